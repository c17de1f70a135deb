import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { compactVerify, importSPKI } from "jose";
import { describe, expect, it } from "vitest";
import { statusOf } from "../../src/errors/index.js";
import { AgentClient, GATEWAY_ERROR_CODES, GatewayClientError, isGatewayError, keySigner, type AgentSigner } from "../../packages/sdk/src/index.js";

/** A scripted gateway: answers by route, records every request. No sockets, no real time. */
function fakeGateway(routes: Record<string, (req: { body: any; headers: Headers; n: number }) => Response | Promise<Response>>) {
  const requests: { method: string; path: string; headers: Headers; body: any }[] = [];
  const counts = new Map<string, number>();
  const fetch = async (input: string | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const key = `${init.method ?? "GET"} ${url.pathname}`;
    const headers = new Headers(init.headers);
    const body = typeof init.body === "string" && headers.get("content-type")?.includes("json") ? JSON.parse(init.body) : init.body;
    requests.push({ method: init.method ?? "GET", path: url.pathname, headers, body });
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    const route = routes[key] ?? Object.entries(routes).find(([k]) => k.endsWith("*") && key.startsWith(k.slice(0, -1)))?.[1];
    if (!route) return json(404, { error: { code: "not_found", message: `no route ${key}`, correlationId: "c" } });
    return route({ body, headers, n });
  };
  return { fetch, requests, count: (key: string) => requests.filter((r) => `${r.method} ${r.path}` === key).length };
}
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const error = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: code, correlationId: "corr-1" } }, headers);

const { privateKey } = generateKeyPairSync("ed25519");
const CATALOG = {
  tools: [
    { tool: "serpapi", action: "search", idempotent: true, cacheable: true, paramsSchema: {} },
    { tool: "gmail_send", action: "send", idempotent: false, cacheable: false, paramsSchema: {} },
  ],
};
const ok = (data: unknown = { ok: true }) =>
  json(200, { data, meta: { correlationId: "corr-1", tool: "serpapi", action: "search", cache: "miss", attempts: 1, upstreamMs: 1, gatewayMs: 0.2 } });

function client(routes: Parameters<typeof fakeGateway>[0], extra: Partial<ConstructorParameters<typeof AgentClient>[0]> = {}) {
  const clock = { now: Date.UTC(2026, 10, 30, 12) };
  const sleeps: number[] = [];
  let issued = 0;
  const gw = fakeGateway({
    "POST /api/tokens": () =>
      json(201, { token: `tok-${++issued}`, tokenId: `id-${issued}`, expiresAt: new Date(clock.now + 100_000).toISOString(), scopes: ["serpapi:search"] }),
    "GET /api/tools": () => json(200, CATALOG),
    ...routes,
  });
  const agent = new AgentClient({
    baseUrl: "http://gateway.test",
    agentId: "agt_1",
    privateKey,
    scopes: ["serpapi:search"],
    fetch: gw.fetch,
    now: () => clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.now += ms;
    },
    random: () => 0.5,
    ...extra,
  });
  return { agent, gw, clock, sleeps, tokensIssued: () => issued };
}

describe("SDK: tokens", () => {
  it("reuses a token until 80 % of its lifetime, then refreshes it (concurrent callers share one refresh)", async () => {
    const { agent, clock, tokensIssued } = client({});
    expect(await Promise.all([agent.token(), agent.token(), agent.token()])).toEqual(["tok-1", "tok-1", "tok-1"]);
    clock.now += 79_000;
    expect(await agent.token()).toBe("tok-1");
    clock.now += 2_000;
    expect(await agent.token()).toBe("tok-2");
    expect(tokensIssued()).toBe(2);
  });

  it("refreshes as soon as the gateway answers X-Token-Refresh: recommended", async () => {
    const { agent, gw } = client({
      "POST /api/proxy": ({ n }) =>
        n === 1 ? new Response(JSON.stringify({ data: 1, meta: {} }), { status: 200, headers: { "x-token-refresh": "recommended" } }) : ok(),
    });
    await agent.call("serpapi", "search", { q: "a" });
    await agent.call("serpapi", "search", { q: "b" });
    const auth = gw.requests.filter((r) => r.path === "/api/proxy").map((r) => r.headers.get("authorization"));
    expect(auth).toEqual(["Bearer tok-1", "Bearer tok-2"]);
  });

  it("replaces an expired token once and repeats the call", async () => {
    const { agent, gw } = client({ "POST /api/proxy": ({ n }) => (n === 1 ? error(401, "token_expired") : ok()) });
    await expect(agent.call("gmail_send", "send", { to: "a@example.com" })).resolves.toMatchObject({ data: { ok: true } });
    expect(gw.count("POST /api/tokens")).toBe(2);
  });

  it("gets tokens from the OAuth token endpoint with a private_key_jwt assertion", async () => {
    const jti = "tok-id-7";
    const token = `x.${Buffer.from(JSON.stringify({ jti })).toString("base64url")}.y`;
    const { agent, gw } = client(
      { "POST /oauth/token": () => json(200, { access_token: token, token_type: "Bearer", expires_in: 900, scope: "serpapi:search" }) },
      { tokenEndpoint: "oauth" },
    );
    await expect(agent.issueToken()).resolves.toMatchObject({ token, tokenId: jti, scopes: ["serpapi:search"] });
    const form = new URLSearchParams(String(gw.requests[0]!.body));
    expect(Object.fromEntries(form)).toMatchObject({
      grant_type: "client_credentials",
      client_id: "agt_1",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      scope: "serpapi:search",
    });
    const bad = client(
      { "POST /oauth/token": () => json(400, { error: "invalid_grant", error_description: "the assertion was already used" }) },
      { tokenEndpoint: "oauth" },
    );
    await expect(bad.agent.issueToken()).rejects.toMatchObject({ code: "invalid_grant", status: 400 });
  });
});

describe("SDK: assertions", () => {
  it.each(["ed25519", "ec", "rsa"] as const)("signs a JWS the gateway's verifier accepts (%s), also through a signer callback", async (type) => {
    const pair =
      type === "ec"
        ? generateKeyPairSync("ec", { namedCurve: "P-256" })
        : type === "rsa"
          ? generateKeyPairSync("rsa", { modulusLength: 2048 })
          : generateKeyPairSync("ed25519");
    const inner = keySigner(pair.privateKey);
    const calls: number[] = [];
    // A KMS-style signer: the SDK only hands it bytes.
    const kms: AgentSigner = { algorithm: inner.algorithm, sign: async (input) => (calls.push(input.length), inner.sign(input)) };
    const agent = new AgentClient({ baseUrl: "http://gateway.test", agentId: "agt_9", signer: kms, scopes: [], now: () => Date.UTC(2026, 10, 30) });
    const jws = await agent.signAssertion({ audience: "urn:test", jti: "j-1" });
    const key = await importSPKI(pair.publicKey.export({ type: "spki", format: "pem" }) as string, inner.algorithm);
    const { payload, protectedHeader } = await compactVerify(jws, key);
    expect(protectedHeader.alg).toBe({ ed25519: "EdDSA", ec: "ES256", rsa: "RS256" }[type]);
    expect(JSON.parse(Buffer.from(payload).toString())).toMatchObject({
      iss: "agt_9",
      sub: "agt_9",
      aud: "urn:test",
      jti: "j-1",
      exp: Date.UTC(2026, 10, 30) / 1000 + 60,
    });
    expect(calls).toHaveLength(1);
  });

  it("refuses a public key as the agent's key", () => {
    expect(() => keySigner(createPublicKey(privateKey).export({ type: "spki", format: "pem" }) as string)).toThrow();
  });
});

describe("SDK: retries and idempotency", () => {
  it("retries an idempotent action after the Retry-After the gateway gave", async () => {
    const { agent, gw, sleeps } = client({ "POST /api/proxy": ({ n }) => (n === 1 ? error(503, "circuit_open", { "retry-after": "1" }) : ok({ hits: 3 })) });
    await expect(agent.call("serpapi", "search", { q: "a" })).resolves.toMatchObject({ data: { hits: 3 } });
    expect(sleeps).toEqual([1000]);
    expect(gw.count("POST /api/proxy")).toBe(2);
    expect(gw.requests.find((r) => r.path === "/api/proxy")!.headers.get("idempotency-key")).toBeNull();
  });

  it("returns a Retry-After longer than it will wait at once, and stops after maxRetries", async () => {
    const long = client({ "POST /api/proxy": () => error(429, "quota_exceeded", { "retry-after": "3600" }) });
    const err = await long.agent.call("serpapi", "search", { q: "a" }).catch((e) => e);
    expect(isGatewayError(err, "quota_exceeded")).toBe(true);
    expect((err as GatewayClientError).retryAfterSeconds).toBe(3600);
    expect(long.sleeps).toEqual([]);
    const always = client({ "POST /api/proxy": () => error(503, "circuit_open", { "retry-after": "1" }) }, { retry: { maxRetries: 2 } });
    await expect(always.agent.call("serpapi", "search", { q: "a" })).rejects.toMatchObject({ code: "circuit_open" });
    expect(always.gw.count("POST /api/proxy")).toBe(3);
  });

  it("retries a network failure of an idempotent action with backoff", async () => {
    const { agent, sleeps } = client({ "POST /api/proxy": ({ n }) => (n === 1 ? Promise.reject(new TypeError("fetch failed")) : ok()) });
    await expect(agent.call("serpapi", "search", { q: "a" })).resolves.toMatchObject({ data: { ok: true } });
    expect(sleeps).toEqual([75]); // 100 ms × (0.5 + 0.5/2)
  });

  it("never retries a side-effecting action, and gives each call its own Idempotency-Key (yours when given)", async () => {
    const { agent, gw, sleeps } = client({ "POST /api/proxy": ({ n }) => (n === 1 ? error(503, "circuit_open", { "retry-after": "1" }) : ok()) });
    await expect(agent.call("gmail_send", "send", { to: "a@example.com" })).rejects.toMatchObject({
      code: "circuit_open",
      status: 503,
      correlationId: "corr-1",
    });
    expect(sleeps).toEqual([]);
    await agent.call("gmail_send", "send", { to: "a@example.com" });
    await agent.call("gmail_send", "send", { to: "a@example.com" }, { idempotencyKey: "mine-1" });
    await agent.call("gmail_send", "send", { to: "a@example.com" }, { headers: { "Idempotency-Key": "mine-2" } });
    const keys = gw.requests.filter((r) => r.path === "/api/proxy").map((r) => r.headers.get("idempotency-key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys.slice(2)).toEqual(["mine-1", "mine-2"]);
  });

  it("treats an action the catalog does not know as side-effecting", async () => {
    const { agent, gw } = client({ "POST /api/proxy": () => error(503, "circuit_open", { "retry-after": "1" }) });
    await expect(agent.call("newtool", "do", {})).rejects.toMatchObject({ code: "circuit_open" });
    expect(gw.count("POST /api/proxy")).toBe(1);
    expect(gw.requests.find((r) => r.path === "/api/proxy")!.headers.get("idempotency-key")).not.toBeNull();
  });
});

describe("SDK: jobs and approvals", () => {
  it("waits for a job, polling less often as it goes, and gives up with wait_timeout", async () => {
    const { agent, sleeps } = client({
      "POST /api/jobs": () => json(202, { jobId: "j1", status: "queued" }),
      "GET /api/jobs/j1": ({ n }) => json(200, { jobId: "j1", status: n < 4 ? "running" : "succeeded", result: { done: true } }),
    });
    await expect(agent.submitJob("serpapi", "search", { q: "a" })).resolves.toMatchObject({ jobId: "j1" });
    await expect(agent.waitForJob("j1")).resolves.toMatchObject({ status: "succeeded", result: { done: true } });
    expect(sleeps).toEqual([250, 375, 563]);
    const stuck = client({ "GET /api/jobs/j2": () => json(200, { jobId: "j2", status: "running" }) });
    await expect(stuck.agent.waitForJob("j2", { timeoutMs: 2000 })).rejects.toMatchObject({ code: "wait_timeout" });
  });

  it("a call held for approval raises approval_pending, or waits for the decision and returns the executed result", async () => {
    const pending = { approval: { id: "ap1", status: "pending", expiresAt: "2026-11-30T13:00:00.000Z", argsHash: "h" } };
    const held = client({ "POST /api/proxy": () => json(202, pending, { location: "/api/approvals/ap1" }) });
    const err = await held.agent.call("gmail_send", "send", { to: "x@elsewhere.test" }).catch((e) => e);
    expect(isGatewayError(err, "approval_pending")).toBe(true);
    expect((err as GatewayClientError).details).toMatchObject({ approval: { id: "ap1" } });

    const approved = client({
      "POST /api/proxy": () => json(202, pending),
      "GET /api/approvals/ap1": ({ n }) =>
        json(200, { ...pending.approval, tool: "gmail_send", action: "send", status: n < 3 ? "pending" : "executed", result: { id: "msg-1" } }),
    });
    await expect(approved.agent.call("gmail_send", "send", { to: "x@elsewhere.test" }, { waitForApproval: true })).resolves.toMatchObject({
      data: { id: "msg-1" },
    });

    const denied = client({
      "POST /api/proxy": () => json(202, pending),
      "GET /api/approvals/ap1": () => json(200, { ...pending.approval, status: "denied", decisionReason: "not to that domain" }),
    });
    await expect(denied.agent.call("gmail_send", "send", {}, { waitForApproval: true })).rejects.toMatchObject({
      code: "approval_denied",
      message: expect.stringContaining("not to that domain"),
    });
  });
});

describe("SDK: errors and integrations", () => {
  it("knows every error code of the gateway's catalogue", () => {
    for (const code of Object.keys(statusOf)) expect(GATEWAY_ERROR_CODES as readonly string[]).toContain(code);
  });

  it("turns no answer at all into network_error, and an answer without the gateway's shape into http_error", async () => {
    const down = new AgentClient({
      baseUrl: "http://gateway.test",
      agentId: "a",
      privateKey,
      scopes: [],
      fetch: () => Promise.reject(new TypeError("ECONNREFUSED")),
    });
    await expect(down.issueToken()).rejects.toMatchObject({ code: "network_error", status: 0 });
    const proxy = new AgentClient({
      baseUrl: "http://gateway.test",
      agentId: "a",
      privateKey,
      scopes: [],
      fetch: async () => new Response("<html>bad gateway</html>", { status: 502 }),
    });
    await expect(proxy.issueToken()).rejects.toMatchObject({ code: "http_error", status: 502 });
  });

  it("gives the OpenAI client and MCP transports a fetch that carries the agent's current token", async () => {
    const { agent, gw } = client({ "POST /v1/chat/completions": () => json(200, { choices: [] }) });
    const openai = agent.openAIOptions();
    expect(openai.baseURL).toBe("http://gateway.test/v1");
    await openai.fetch("http://gateway.test/v1/chat/completions", {
      method: "POST",
      headers: { authorization: "Bearer ignored", "content-type": "application/json" },
      body: "{}",
    });
    expect(gw.requests.at(-1)!.headers.get("authorization")).toBe("Bearer tok-1");
    expect(agent.mcpTransportOptions().url.toString()).toBe("http://gateway.test/mcp");
  });
});
