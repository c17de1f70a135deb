import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { startMockUpstreams, type MockUpstreams } from "../../src/mock-upstreams/server.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

async function refusal(p: Promise<unknown>): Promise<GatewayClientError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayClientError) return err;
    throw err;
  }
  throw new Error("expected the call to be refused");
}

describe("proxy road in mock mode: every tool through the gateway", () => {
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    // Retries and the cache are off here: this suite checks how each single upstream answer is mapped.
    t = await startTestGateway({ UPSTREAM_MODE: "mock", UPSTREAM_TIMEOUT_MS: "1500", FF_RETRY: "off", FF_CACHE: "off", FF_BREAKERS: "off" });
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t));
  });
  afterAll(async () => t.close());

  it("serpapi:search returns SerpAPI's shape with meta and Server-Timing", async () => {
    const r = await client.call<any>("serpapi", "search", { q: "agent gateways", num: 3 });
    expect(r.data.search_metadata.status).toBe("Success");
    expect(r.data.organic_results).toHaveLength(3);
    expect(r.data.search_parameters).toMatchObject({ engine: "google", q: "agent gateways" });
    expect(r.meta).toMatchObject({ tool: "serpapi", action: "search", attempts: 1 });
    expect(typeof r.meta.correlationId).toBe("string");
    expect(r.headers.get("server-timing")).toMatch(/^gateway;dur=[\d.]+, upstream;dur=[\d.]+$/);
  });

  it("http_fetch:get fetches a page (served by the mock web server) and http_fetch:head only its headers", async () => {
    const r = await client.call<any>("http_fetch", "get", { url: "https://example.com/docs/page" });
    expect(r.data).toMatchObject({ status: 200, url: "https://example.com/docs/page", bodyEncoding: "text", truncated: false });
    expect(r.data.body).toContain("<title>example.com/docs/page</title>");
    const h = await client.call<any>("http_fetch", "head", { url: "https://example.com/x" });
    expect(h.data.status).toBe(200);
    expect(h.data.body).toBeUndefined();
    const missing = await client.call<any>("http_fetch", "get", { url: "https://example.com/status/404" });
    expect(missing.data.status).toBe(404); // the site's status is data, not a gateway error
  });

  it("http_fetch caps the body and reports truncation", async () => {
    const r = await client.call<any>("http_fetch", "get", { url: "https://example.com/bytes/5000", maxBytes: 100 });
    expect(r.data.bytes).toBe(100);
    expect(r.data.truncated).toBe(true);
  });

  it("openai:chat returns a chat.completion with usage", async () => {
    const r = await client.call<any>("openai", "chat", { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello there" }], max_tokens: 50 });
    expect(r.data.object).toBe("chat.completion");
    expect(r.data.choices[0].message.role).toBe("assistant");
    expect(r.data.usage.total_tokens).toBe(r.data.usage.prompt_tokens + r.data.usage.completion_tokens);
  });

  it("gmail_send:send returns a message id", async () => {
    const before = t.gateway.mockUpstreams!.stats().gmailSent;
    const r = await client.call<any>("gmail_send", "send", { to: ["ops@example.com"], subject: "Report", text: "All good." });
    expect(r.data.id).toMatch(/^[0-9a-f]{16}$/);
    expect(r.data.labelIds).toEqual(["SENT"]);
    expect(t.gateway.mockUpstreams!.stats().gmailSent).toBe(before + 1);
  });

  it("refuses bad input with 400 naming the field, and unknown tools/actions with 404", async () => {
    const bad = await refusal(client.call("serpapi", "search", { q: "" }));
    expect(bad.status).toBe(400);
    expect(bad.code).toBe("invalid_request");
    expect(bad.message).toContain("params.q");
    const extra = await refusal(client.call("serpapi", "search", { q: "x", evil: 1 }));
    expect(extra.message).toContain("params.evil");
    const header = await refusal(client.call("gmail_send", "send", { to: "a@example.com", subject: "hi\r\nBcc: victim@example.com", text: "x" }));
    expect(header.code).toBe("invalid_request");
    expect((await refusal(client.call("nope", "search", {}))).code).toBe("unknown_tool");
    expect((await refusal(client.call("serpapi", "delete", {}))).code).toBe("unknown_action");
    const noBody = await http(`${t.url}/api/proxy`, {
      headers: { authorization: `Bearer ${await client.token()}`, "content-type": "application/json" },
      rawBody: "{not json",
    });
    expect(noBody.status).toBe(400);
    expect(noBody.json.error.correlationId).toBeTypeOf("string");
  });

  it("refuses a call without a token, and one outside the token's scopes", async () => {
    const r = await http(`${t.url}/api/proxy`, { body: { tool: "serpapi", action: "search", params: { q: "x" } } });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe("token_missing");
    const { client: narrow } = await newAgent(t, { scopes: ["serpapi:search"] });
    const denied = await refusal(narrow.call("gmail_send", "send", { to: "a@example.com", subject: "s", text: "t" }));
    expect(denied.status).toBe(403);
    expect(denied.details?.reason).toBe("scope_denied");
  });

  it("maps upstream failures: 4xx stays a client error, 5xx is upstream_error, a hang is upstream_timeout, 429 carries Retry-After", async () => {
    const model = await refusal(client.call("openai", "chat", { model: "gpt-9-imaginary", messages: [{ role: "user", content: "x" }] }));
    expect(model.status).toBe(404);
    expect(model.code).toBe("upstream_client_error");
    expect(model.message).toContain("does not exist");

    const mock = t.gateway.mockUpstreams!;
    mock.setFault("openai", { mode: "status", status: 503, remaining: 1 });
    const failed = await refusal(client.call("openai", "chat", { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }));
    expect(failed.status).toBe(502);
    expect(failed.code).toBe("upstream_error");

    mock.setFault("serpapi", { mode: "status", status: 429, retryAfterSeconds: 7, remaining: 1 });
    const limited = await refusal(client.call("serpapi", "search", { q: "rate limited" }));
    expect(limited.status).toBe(503);
    expect(limited.retryAfterSeconds).toBe(7);

    mock.setFault("gmail", { mode: "hang", remaining: 1 });
    const hung = await refusal(client.call("gmail_send", "send", { to: "a@example.com", subject: "s", text: "t" }));
    expect(hung.status).toBe(504);
    expect(hung.code).toBe("upstream_timeout");

    mock.setFault("gmail", { mode: "down", remaining: 1 });
    const reset = await refusal(client.call("gmail_send", "send", { to: "a@example.com", subject: "s", text: "t" }));
    expect(reset.status).toBe(502);
    expect(reset.code).toBe("upstream_error");
  });

  it("refuses a tool whose credential is missing with a clear 424", async () => {
    const t2 = await startTestGateway({ UPSTREAM_MODE: "mock" });
    try {
      const { client: c } = await newAgent(t2);
      const err = await refusal(c.call("serpapi", "search", { q: "x" }));
      expect(err.status).toBe(424);
      expect(err.code).toBe("credential_missing");
      // http_fetch needs no credential
      expect((await c.call<any>("http_fetch", "get", { url: "https://example.org/" })).data.status).toBe(200);
    } finally {
      await t2.close();
    }
  });

  it("lists the tools an agent can call with their parameter schemas, to callers with a token only", async () => {
    const anonymous = await http(`${t.url}/api/tools`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.error.code).toBe("token_missing");
    expect(anonymous.text).not.toContain("serpapi");
    const r = await http(`${t.url}/api/tools`, { headers: { authorization: `Bearer ${await client.token()}` } });
    const names = r.json.tools.map((x: { tool: string; action: string }) => `${x.tool}:${x.action}`);
    expect(names).toEqual(expect.arrayContaining(["serpapi:search", "http_fetch:get", "http_fetch:head", "openai:chat", "gmail_send:send"]));
  });

  it("records every call, allowed or denied, in the audit log without its parameters", async () => {
    await client.call("serpapi", "search", { q: "audit me please" });
    await t.gateway.audit.flush();
    const r = await http(`${t.url}/api/audit?tool=serpapi&limit=100`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain("audit me please");
    const decisions = new Set(r.json.records.map((x: { decision: string }) => x.decision));
    expect(decisions.has("allow")).toBe(true);
  });
});

describe("proxy road in live mode, pointed at the mock upstreams", () => {
  let mock: MockUpstreams;
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    mock = await startMockUpstreams({ validKeys: { serpapi: "live-serp-key", openai: "sk-live-key", gmail: "ya29.live-token" } });
    t = await startTestGateway({
      UPSTREAM_MODE: "live",
      SERPAPI_BASE_URL: mock.url,
      OPENAI_BASE_URL: mock.url,
      GMAIL_BASE_URL: mock.url,
      SSRF_ALLOW: "127.0.0.1/32",
    });
    await storeBuiltinCredentials(t, { serpapi: "live-serp-key", openai: "sk-live-key", gmail_send: "ya29.live-token" });
    ({ client } = await newAgent(t));
  });
  afterAll(async () => {
    await t.close();
    await mock.close();
  });

  it("sends each credential the way the real API expects it (query key, bearer token)", async () => {
    const s = await client.call<any>("serpapi", "search", { q: "live path" });
    expect(s.data.search_parameters.q).toBe("live path");
    const o = await client.call<any>("openai", "chat", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    expect(o.data.object).toBe("chat.completion");
    const g = await client.call<any>("gmail_send", "send", { to: "a@example.com", cc: ["b@example.com"], subject: "Grüße", html: "<p>hi</p>", text: "hi" });
    expect(g.data.labelIds).toEqual(["SENT"]);
    expect(mock.stats().gmailSent).toBe(1);
  });

  it("a rejected credential is an upstream_error that never shows the credential", async () => {
    await t.admin.putCredential("openai", "sk-wrong-key-9d8f7e");
    const err = await refusal(client.call("openai", "chat", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }));
    expect(err.status).toBe(502);
    expect(err.details?.reason).toBe("credential_rejected");
    expect(err.message).not.toContain("sk-wrong-key-9d8f7e");
    expect(err.message).toContain("[REDACTED]");
    await t.admin.putCredential("openai", "sk-live-key");
  });

  it("http_fetch in live mode reaches an allow-listed local server directly", async () => {
    const r = await client.call<any>("http_fetch", "get", { url: `${mock.url}/headers`, headers: { accept: "application/json" } });
    expect(r.data.status).toBe(200);
    const echoed = JSON.parse(r.data.body).headers;
    expect(echoed["x-correlation-id"]).toBe(r.meta.correlationId);
    expect(echoed.authorization).toBeUndefined();
  });
});
