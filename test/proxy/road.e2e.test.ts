import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/client/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

/** `{"a":{"a":…{"a":1}}}`, `depth` objects deep, as text (JSON.stringify itself would recurse). */
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
const callBody = (tool: string, action: string, paramsText: string) => `{"tool":"${tool}","action":"${action}","params":${paramsText}}`;

describe("the road: authenticate first, bounded parameters, one audit record per call", () => {
  let upstream: http.Server;
  let upstreamHits = 0;
  let t: TestGateway;
  let client: AgentClient;
  let token: string;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      upstreamHits++;
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    t = await startTestGateway({ UPSTREAM_MODE: "mock", SSRF_ALLOW: "127.0.0.1/32", BODY_LIMIT_BYTES: String(4 * 1024 * 1024) });
    await storeBuiltinCredentials(t);
    await allowEverything(t);
    await t.admin.defineTool({
      name: "sink",
      baseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      actions: { post: { method: "POST", path: "/in", params: { type: "object" } } },
    });
    ({ client } = await newAgent(t, { scopes: ["serpapi:search", "sink:*"] }));
    token = await client.token();
  });
  afterAll(async () => {
    await t.close();
    upstream.close();
  });

  const post = (body: string, auth?: string) =>
    request(`${t.url}/api/proxy`, { headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) }, rawBody: body });

  it("an anonymous caller learns nothing about tools, actions, parameters or policy", async () => {
    const probes = [
      callBody("serpapi", "search", '{"q":"x"}'),
      callBody("no-such-tool", "search", "{}"),
      callBody("serpapi", "no-such-action", "{}"),
      callBody("serpapi", "search", '{"q":""}'),
      callBody("serpapi", "search", '{"evil":1}'),
      callBody("gmail_send", "send", '{"to":"a@example.com","subject":"s","text":"t"}'),
    ];
    for (const auth of [undefined, "Bearer not.a.token", "Bearer eyJhbGciOiJFZERTQSJ9.e30.AAAA"]) {
      const answers = await Promise.all(probes.map((b) => post(b, auth)));
      const code = auth === undefined ? "token_missing" : "token_invalid";
      for (const r of answers) {
        expect(r.status).toBe(401);
        expect(r.json.error.code).toBe(code);
        expect(r.json.error.correlationId).toBeTypeOf("string");
        expect(r.json.error.details).toBeUndefined();
      }
      // Every probe gets the same message: nothing in it depends on the tool, action or parameters.
      expect(new Set(answers.map((r) => r.json.error.message)).size).toBe(1);
    }
  });

  it("anonymous refusals are counted, not audited one by one", async () => {
    await t.gateway.audit.flush();
    const before = (await t.gateway.store.queryAudit({ limit: 1000 })).filter((r) => r.reason === "token_missing").length;
    for (let i = 0; i < 30; i++) await post(callBody("serpapi", "search", '{"q":"x"}'));
    await t.gateway.audit.flush();
    const after = (await t.gateway.store.queryAudit({ limit: 1000 })).filter((r) => r.reason === "token_missing").length;
    // At most one sampled record per second of refusals; never one per call.
    expect(after - before).toBeLessThan(30);
    const metrics = (await request(`${t.url}/metrics`)).text;
    const counted = Number(/gateway_unauthenticated_calls_total\{door="rest",code="token_missing"\} (\d+)/.exec(metrics)?.[1]);
    expect(counted).toBeGreaterThanOrEqual(30);
  });

  it("refuses parameters nested too deep with 400 invalid_request, before the upstream, and audits it", async () => {
    for (const depth of [40, 3_000, 10_000, 200_000]) {
      const hits = upstreamHits;
      const r = await post(callBody("sink", "post", nested(depth)), `Bearer ${token}`);
      expect(r.status, `depth ${depth}: ${r.text.slice(0, 200)}`).toBe(400);
      expect(r.json.error.code).toBe("invalid_request");
      expect(r.json.error.correlationId).toBeTypeOf("string");
      expect(upstreamHits).toBe(hits);
      await t.gateway.audit.flush();
      const [record] = (await t.gateway.store.queryAudit({ limit: 1000 })).filter((x) => x.correlationId === r.json.error.correlationId);
      expect(record).toMatchObject({ decision: "error", reason: "invalid_request", status: 400, door: "rest" });
    }
    // Within the bound the call goes through.
    const ok = await post(callBody("sink", "post", nested(20)), `Bearer ${token}`);
    expect(ok.status).toBe(200);
  });

  it("deep nesting without a token is a plain 401, never a 500", async () => {
    for (const depth of [10_000, 200_000]) {
      const r = await post(callBody("sink", "post", nested(depth)));
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe("token_missing");
    }
  });

  it("refuses too many parameter values with 400 invalid_request", async () => {
    const wide = `{"list":[${Array.from({ length: 30_000 }, () => "0").join(",")}]}`;
    const r = await post(callBody("sink", "post", wide), `Bearer ${token}`);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe("invalid_request");
  });

  it("records the door of every call", async () => {
    const r = await client.call<any>("serpapi", "search", { q: "door" });
    await t.gateway.audit.flush();
    const [record] = (await t.gateway.store.queryAudit({ limit: 1000 })).filter((x) => x.correlationId === r.meta.correlationId);
    expect(record).toMatchObject({ decision: "allow", door: "rest", agentId: expect.any(String) });
  });

  it("another door (MCP) runs the same road through the same entry point, and is labelled as such", async () => {
    const refused = await t.gateway.road
      .handle({ door: "mcp", tool: "serpapi", action: "search", params: { q: "x" }, rawToken: undefined, correlationId: "mcp-anon" })
      .catch((e) => e);
    expect(refused.code).toBe("token_missing");
    const out = await t.gateway.road.handle({
      door: "mcp",
      tool: "serpapi",
      action: "search",
      params: { q: "via mcp" },
      rawToken: token,
      correlationId: "mcp-call-1",
    });
    if ("held" in out) throw new Error("no policy here holds calls for approval");
    expect(out.meta).toMatchObject({ tool: "serpapi", action: "search", correlationId: "mcp-call-1" });
    expect(out.token.agentId).toBeTypeOf("string");
    const deep = await t.gateway.road
      .handle({ door: "mcp", tool: "sink", action: "post", params: JSON.parse(nested(100)), rawToken: token, correlationId: "mcp-deep" })
      .catch((e) => e);
    expect(deep.code).toBe("invalid_request");
    await t.gateway.audit.flush();
    // (The anonymous call may or may not be the one sampled into the audit this second: not asserted.)
    const records = (await t.gateway.store.queryAudit({ limit: 1000 })).filter((r) => r.correlationId === "mcp-call-1" || r.correlationId === "mcp-deep");
    expect(records.map((r) => [r.correlationId, r.door, r.decision]).sort()).toEqual([
      ["mcp-call-1", "mcp", "allow"],
      ["mcp-deep", "mcp", "error"],
    ]);
    const metrics = (await request(`${t.url}/metrics`)).text;
    expect(metrics).toMatch(/gateway_requests_total\{tool="serpapi",action="search",status="2xx",door="mcp"\} 1/);
  });
});

describe("idempotency results are stored redacted", () => {
  let echo: http.Server;
  let t: TestGateway;

  beforeAll(async () => {
    // An upstream that echoes the credential it was sent, as careless ones do.
    echo = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ sent: true, seenKey: req.headers["x-api-key"] }));
      });
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    t = await startTestGateway({ UPSTREAM_MODE: "mock", SSRF_ALLOW: "127.0.0.1/32", IDEMPOTENCY_STORE: "sql" });
    await allowEverything(t);
    await t.admin.defineTool({
      name: "echo",
      baseUrl: `http://127.0.0.1:${(echo.address() as AddressInfo).port}`,
      auth: { in: "header", name: "X-Api-Key" },
      actions: { send: { method: "POST", path: "/send", params: { type: "object" } } },
    });
    await t.admin.putCredential("echo", "echo-secret-value-123456");
  });
  afterAll(async () => {
    await t.close();
    echo.close();
  });

  it("neither the answer nor the stored result holds the credential the upstream echoed", async () => {
    const { client } = await newAgent(t, { scopes: ["echo:send"] });
    const call = () => client.call<any>("echo", "send", { n: 1 }, { headers: { "idempotency-key": "echo-key-1" } });
    const first = await call();
    expect(first.data.data.sent).toBe(true);
    expect(JSON.stringify(first.data)).not.toContain("echo-secret-value-123456");
    const replay = await call();
    expect(replay.meta.replayed).toBe(true);
    const rows = await t.gateway.store.driver.all<{ result: string }>(`SELECT result FROM idempotency_keys`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.result).toContain('"sent":true');
    expect(rows[0]!.result).not.toContain("echo-secret-value-123456");
  });
});
