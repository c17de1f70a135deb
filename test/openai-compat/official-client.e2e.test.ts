import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGatewayProcess, type ChildService } from "../../bench/harness/processes.js";
import { AdminClient, AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { startMockUpstreams, type MockUpstreams } from "../../src/mock-upstreams/server.js";

/**
 * The official `openai` npm client, pointed at a real gateway process (live mode, its OpenAI base URL
 * on a mock OpenAI server in this test so faults can be switched on), with an agent's gateway token as
 * its API key.
 */
describe("the OpenAI-compatible endpoint, driven by the official openai client", () => {
  let mock: MockUpstreams;
  let gateway: ChildService;
  let admin: AdminClient;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-openai-compat-"));
  const adminKey = `openai-compat-${"k".repeat(20)}`;

  async function agentToken(role: string, scopes: string[]) {
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await admin.createAgent({ name: `${role}-${Math.random().toString(36).slice(2, 8)}`, role, publicKey: pair.publicKeyPem });
    const client = new AgentClient({ baseUrl: gateway.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes });
    return { agent, token: await client.token(), issue: () => client.issueToken() };
  }
  async function llmTokens() {
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    const read = (kind: string) => Number(new RegExp(`^gateway_llm_tokens_total\\{tool="openai",kind="${kind}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    return { input: read("input"), output: read("output") };
  }
  async function until(check: () => boolean | Promise<boolean>, what: string) {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const openai = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  const ask = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "Say hi" }] };

  beforeAll(async () => {
    mock = await startMockUpstreams({ host: "127.0.0.1" });
    gateway = await startGatewayProcess({
      DATA_DIR: dataDir,
      GATEWAY_ADMIN_KEY: adminKey,
      UPSTREAM_MODE: "live",
      OPENAI_BASE_URL: mock.url,
      SERPAPI_BASE_URL: mock.url,
      GMAIL_BASE_URL: mock.url,
      SSRF_ALLOW: "127.0.0.1/32",
      POLICY_DEFAULTS: "off",
      RETRY_BASE_MS: "1",
    });
    admin = new AdminClient({ baseUrl: gateway.url, adminKey });
    await admin.putCredential("openai", "sk-compat-test-0001");
    // Writers may chat with one model only; budget agents get one call a day.
    await admin.raw("POST", "/api/policies", {
      name: "writers",
      subject: { role: "writer" },
      rules: [
        { effect: "allow", scopes: ["openai:chat", "openai:models"] },
        { effect: "allow", scopes: ["openai:chat"], guards: { model: { oneOf: ["gpt-4o-mini"] } } },
      ],
    });
    await admin.raw("POST", "/api/policies", {
      name: "budget",
      subject: { role: "budget" },
      rules: [
        { effect: "allow", scopes: ["openai:chat"] },
        { effect: "allow", scopes: ["openai:chat"], quota: { limit: 1, per: "day" } },
      ],
    });
    // A budget of model tokens per day, counted from the answers' usage.
    await admin.raw("POST", "/api/policies", {
      name: "token-budget",
      subject: { role: "tokens" },
      rules: [
        { effect: "allow", scopes: ["openai:chat"] },
        { effect: "allow", scopes: ["openai:chat"], quota: { limit: 60, per: "day", unit: "tokens" } },
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await mock?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("chats through the road: the upstream's body as is, the gateway's correlation id and Server-Timing in headers", async () => {
    const { agent, token } = await agentToken("writer", ["openai:chat", "openai:models"]);
    const { data, response } = await openai(token).chat.completions.create(ask).withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.choices[0]!.message.content).toContain("Say hi");
    expect(data.usage!.total_tokens).toBeGreaterThan(0);
    const correlationId = response.headers.get("x-correlation-id")!;
    expect(response.headers.get("server-timing")).toMatch(/gateway;dur=[\d.]+, upstream;dur=[\d.]+/);
    const audit = await admin.raw<{ records: { correlationId: string; tool: string; action: string; decision: string; door?: string }[] }>(
      "GET",
      `/api/audit?agentId=${agent.id}`,
    );
    // The audit record keeps the tokens the upstream reported.
    expect(audit.records.find((r) => r.correlationId === correlationId)).toMatchObject({
      tool: "openai",
      action: "chat",
      decision: "allow",
      door: "openai",
      usage: { promptTokens: data.usage!.prompt_tokens, completionTokens: data.usage!.completion_tokens, totalTokens: data.usage!.total_tokens },
    });
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_llm_tokens_total\{tool="openai",kind="input"\} [1-9]/m);
    expect(metrics).toMatch(/^gateway_llm_tokens_total\{tool="openai",kind="output"\} [1-9]/m);
  });

  it("lists only the models policy lets this agent chat with", async () => {
    const { token } = await agentToken("writer", ["openai:chat", "openai:models"]);
    const models = [];
    for await (const m of openai(token).models.list()) models.push(m.id);
    expect(models).toEqual(["gpt-4o-mini"]);
  });

  it("a model refused by policy is the client's PermissionDeniedError with the gateway code", async () => {
    const { token } = await agentToken("writer", ["openai:chat"]);
    const before = mock.stats().openai;
    const err = await openai(token)
      .chat.completions.create({ ...ask, model: "gpt-4o" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err).toMatchObject({ status: 403, code: "guard_failed", type: "permission_error" });
    expect(mock.stats().openai).toBe(before);
  });

  it("a used-up quota is a RateLimitError the client is told not to retry", async () => {
    const { token } = await agentToken("budget", ["openai:chat"]);
    await openai(token).chat.completions.create(ask);
    const retrying = new OpenAI({ apiKey: token, baseURL: `${gateway.url}/v1`, maxRetries: 2 });
    const before = mock.stats().openai;
    const { response, error } = await retrying.chat.completions
      .create(ask)
      .withResponse()
      .then(
        () => ({ response: undefined, error: undefined }),
        (e: InstanceType<typeof OpenAI.APIError>) => ({ response: e.headers, error: e }),
      );
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toMatchObject({ status: 429, code: "quota_exceeded" });
    expect(response!.get("x-should-retry")).toBe("false");
    expect(mock.stats().openai).toBe(before);
  });

  it("a token budget counts the tokens answers used, streamed ones included, and refuses once it is spent", async () => {
    const { token } = await agentToken("tokens", ["openai:chat"]);
    const used: number[] = [];
    const first = await openai(token).chat.completions.create(ask);
    used.push(first.usage!.total_tokens);
    let streamedUsage = 0;
    for await (const chunk of await openai(token).chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } }))
      if (chunk.usage) streamedUsage = chunk.usage.total_tokens;
    used.push(streamedUsage);
    expect(used.every((n) => n > 0)).toBe(true);
    // Let in while tokens are left (the last call may overshoot by its own size), then refused.
    let answered = 2;
    let refusal: unknown;
    while (refusal === undefined && answered < 20) {
      await openai(token)
        .chat.completions.create(ask)
        .then(
          () => answered++,
          (e: unknown) => (refusal = e),
        );
    }
    expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
    expect(refusal).toMatchObject({ status: 429, code: "quota_exceeded", message: expect.stringContaining("model tokens") });
    // 60 tokens at ~20 a call: three answers fit (the third overshoots), the fourth is refused.
    expect(answered).toBe(Math.ceil(60 / used[0]!));
  });

  it("an upstream 500 is retried by the gateway and the client gets the answer", async () => {
    const { token } = await agentToken("writer", ["openai:chat"]);
    mock.setFault("openai", { mode: "status", status: 500, remaining: 1 });
    const before = mock.stats().openai;
    const data = await openai(token).chat.completions.create(ask);
    expect(data.choices).toHaveLength(1);
    expect(mock.stats().openai - before).toBe(2);
  });

  it("an upstream that keeps answering 429 ends as a 503 the client may retry later", async () => {
    const { token } = await agentToken("writer", ["openai:chat"]);
    mock.setFault("openai", { mode: "status", status: 429, retryAfterSeconds: 0, remaining: 3 });
    const err = await openai(token)
      .chat.completions.create(ask)
      .catch((e: unknown) => e);
    mock.setFault("openai", undefined);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 503, code: "upstream_error", type: "api_error" });
  });

  it("a revoked token is the client's AuthenticationError; no token at all too", async () => {
    const { token, issue } = await agentToken("writer", ["openai:chat"]);
    const second = await issue();
    await admin.revokeToken(second.tokenId);
    const err = await openai(second.token)
      .chat.completions.create(ask)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: "token_revoked", type: "authentication_error" });
    await expect(openai(token).chat.completions.create(ask)).resolves.toMatchObject({ object: "chat.completion" });
    await expect(openai("not-a-gateway-token").models.list()).rejects.toMatchObject({ status: 401, code: "token_invalid" });
  });

  it("streams the upstream's events through as they arrive, and audits and meters the call when it ends", async () => {
    const { agent, token } = await agentToken("writer", ["openai:chat"]);
    const usageBefore = await llmTokens();
    const { data: stream, response } = await openai(token)
      .chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const correlationId = response.headers.get("x-correlation-id")!;
    let text = "";
    let openWhenFirstArrived: number | undefined;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const chunk of stream) {
      // The first event reaches the client while the upstream is still sending: nothing is buffered.
      openWhenFirstArrived ??= mock.stats().openaiStreamsOpen;
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(openWhenFirstArrived).toBe(1);
    expect(text).toBe("This is a mock answer to: Say hi");
    expect(usage!.completion_tokens).toBe(8);
    // Audited once it ended, metered with the usage the last event reported.
    const audit = await admin.raw<{ records: { correlationId: string; decision: string; status: number; reason: string | null }[] }>(
      "GET",
      `/api/audit?agentId=${agent.id}`,
    );
    expect(audit.records.find((r) => r.correlationId === correlationId)).toMatchObject({
      decision: "allow",
      status: 200,
      reason: null,
      usage: { promptTokens: usage!.prompt_tokens, completionTokens: usage!.completion_tokens, totalTokens: usage!.prompt_tokens + usage!.completion_tokens },
    });
    const usageAfter = await llmTokens();
    expect(usageAfter.output - usageBefore.output).toBe(usage!.completion_tokens);
    expect(usageAfter.input - usageBefore.input).toBe(usage!.prompt_tokens);
  });

  it("cancels the upstream when the client goes away mid-stream, and scrubs a stored secret the upstream echoes", async () => {
    const { agent, token } = await agentToken("writer", ["openai:chat"]);
    const long = { ...ask, max_tokens: 4096, messages: [{ role: "user" as const, content: Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ") }] };
    const abort = new AbortController();
    const abortedBefore = mock.stats().openaiStreamsAborted;
    const { data: stream, response } = await openai(token)
      .chat.completions.create({ ...long, stream: true }, { signal: abort.signal })
      .withResponse();
    let chunks = 0;
    await (async () => {
      for await (const _chunk of stream) if (++chunks === 3) abort.abort();
    })().catch(() => undefined);
    await until(() => mock.stats().openaiStreamsAborted > abortedBefore && mock.stats().openaiStreamsOpen === 0, "the upstream stream to be cancelled");
    const correlationId = response.headers.get("x-correlation-id")!;
    await until(
      async () =>
        (await admin.raw<{ records: { correlationId: string; reason: string | null }[] }>("GET", `/api/audit?agentId=${agent.id}`)).records.some(
          (r) => r.correlationId === correlationId && r.reason === "client_closed",
        ),
      "the cut stream's audit record",
    );

    // The mock echoes the prompt: a credential in it must come back scrubbed, streamed or not.
    const echo = { ...ask, messages: [{ role: "user" as const, content: "repeat sk-compat-test-0001 please" }] };
    let streamed = "";
    for await (const chunk of await openai(token).chat.completions.create({ ...echo, stream: true })) streamed += chunk.choices[0]?.delta.content ?? "";
    expect(streamed).toContain("[REDACTED]");
    expect(streamed).not.toContain("sk-compat-test-0001");
    const whole = await openai(token).chat.completions.create(echo);
    expect(whole.choices[0]!.message.content).not.toContain("sk-compat-test-0001");
  });

  it("bad input gets the OpenAI shape too: a malformed body names the field", async () => {
    const { token } = await agentToken("writer", ["openai:chat"]);
    const badStream = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ ...ask, stream: "yes" }),
    });
    expect(badStream.status).toBe(400);
    expect(((await badStream.json()) as { error: { param: string } }).error.param).toBe("stream");
    const r = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: "hi" }),
    });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { type: string; code: string; param: string | null; correlation_id: string } };
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_request" });
    expect(body.error.correlation_id).toBe(r.headers.get("x-correlation-id"));
    const notJson = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
  });
  it("audits the model tokens of openai:chat through /api/proxy too, and the hash chain still verifies", async () => {
    const { agent, token } = await agentToken("writer", ["openai:chat"]);
    const body = JSON.stringify({ tool: "openai", action: "chat", params: { ...ask, messages: [{ role: "user", content: "Count my tokens" }] } });
    const r = await fetch(`${gateway.url}/api/proxy`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });
    expect(r.status).toBe(200);
    const answer = (await r.json()) as {
      data: { usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
      meta: { correlationId: string };
    };
    const audit = await admin.raw<{ records: { correlationId: string; door: string; usage: unknown }[] }>("GET", `/api/audit?agentId=${agent.id}`);
    expect(audit.records.find((r) => r.correlationId === answer.meta.correlationId)).toMatchObject({
      door: "rest",
      usage: {
        promptTokens: answer.data.usage.prompt_tokens,
        completionTokens: answer.data.usage.completion_tokens,
        totalTokens: answer.data.usage.total_tokens,
      },
    });
    // A call that is no model answer has none.
    const models = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${token}` } });
    const listed = await admin.raw<{ records: { correlationId: string; usage: unknown }[] }>(
      "GET",
      `/api/audit?correlationId=${models.headers.get("x-correlation-id")}`,
    );
    expect(listed.records.map((x) => x.usage)).toEqual(listed.records.map(() => null));
    // The usage is part of each record's link: every chain (this run's streamed and whole answers included) still verifies.
    const verified = await admin.raw<{ ok: boolean; records: number }>("GET", "/api/audit/verify");
    expect(verified).toMatchObject({ ok: true, broken: [] });
    expect(verified.records).toBeGreaterThan(10);
  });
});
