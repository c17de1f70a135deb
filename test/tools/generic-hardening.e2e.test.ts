import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { mockResolver } from "../../src/tools/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

/** A real upstream that records every path it is asked for. */
async function recordingUpstream(host: string) {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? "");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { paths, base: `http://${host}:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as GatewayClientError,
  );

describe("generic tools: a path parameter cannot climb out of its template", () => {
  let upstream: Awaited<ReturnType<typeof recordingUpstream>>;
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    upstream = await recordingUpstream("127.0.0.1");
    t = await startTestGateway({ UPSTREAM_MODE: "live", SSRF_ALLOW: "127.0.0.1/32" });
    ({ client } = await newAgent(t, { scopes: ["inventory:*"] }));
    await t.admin.defineTool({
      name: "inventory",
      baseUrl: `${upstream.base}/api/v2`,
      auth: { in: "header", name: "X-Api-Key" },
      actions: {
        get_item: {
          method: "GET",
          path: "/items/{id}",
          params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: { type: "string", maxLength: 64 } } },
        },
        get_part: {
          method: "GET",
          path: "/items/{id}/parts/{part}",
          params: { type: "object", additionalProperties: false, required: ["id", "part"], properties: { id: { type: "string" }, part: { type: "string" } } },
        },
      },
    });
    await t.admin.putCredential("inventory", "inventory-secret-0001");
    await t.admin.raw("POST", "/api/policies", { name: "inventory-users", subject: { all: true }, rules: [{ effect: "allow", scopes: ["inventory:*"] }] });
  });
  afterAll(async () => {
    await t.close();
    await upstream.close();
  });

  it("an ordinary id reaches the templated path", async () => {
    const got = await client.call<any>("inventory", "get_item", { id: "sku-1.2" });
    expect(got.data.data.path).toBe("/api/v2/items/sku-1.2");
  });

  it.each([
    ["get_item", { id: ".." }],
    ["get_item", { id: "." }],
    ["get_item", { id: "" }],
    ["get_part", { id: "..", part: ".." }],
    ["get_part", { id: "1", part: ".." }],
  ])("%s %j is refused with 400 before anything is sent", async (action, params) => {
    const before = upstream.paths.length;
    const err = await failure(client.call("inventory", action, params));
    expect(err).toBeInstanceOf(GatewayClientError);
    expect(err!.status).toBe(400);
    expect(err!.code).toBe("invalid_request");
    expect(err!.correlationId).toBeTruthy();
    expect(upstream.paths.length).toBe(before);
  });

  it.each([
    ["http://[bad", 400, "invalid_request"],
    ["http://user:secret@127.0.0.1:1/", 403, "ssrf_blocked"],
  ])("a base URL %s is refused with %i %s when the tool is defined, never a 500", async (baseUrl, status, code) => {
    const r = await request(`${t.url}/api/tools`, {
      headers: { authorization: `Bearer ${t.adminKey}` },
      body: { name: "broken", baseUrl, actions: { ping: { method: "GET", path: "/ping" } } },
    });
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(r.json.error.correlationId ?? r.headers.get("x-correlation-id")).toBeTruthy();
  });

  it("dots inside a segment are data, not navigation", async () => {
    const got = await client.call<any>("inventory", "get_item", { id: "..." });
    expect(got.data.data.path).toBe("/api/v2/items/...");
  });
});

describe("generic tools: parameter schema patterns run on RE2 (linear time)", () => {
  let upstream: Awaited<ReturnType<typeof recordingUpstream>>;
  let t: TestGateway;
  let client: AgentClient;
  const admin = () => ({ authorization: `Bearer ${t.adminKey}` });
  const tool = (name: string, pattern: string) => ({
    name,
    baseUrl: upstream.base,
    actions: {
      lookup: {
        method: "GET",
        path: "/lookup/{code}",
        params: { type: "object", additionalProperties: false, required: ["code"], properties: { code: { type: "string", maxLength: 5000, pattern } } },
      },
    },
  });

  beforeAll(async () => {
    upstream = await recordingUpstream("127.0.0.1");
    t = await startTestGateway({ UPSTREAM_MODE: "live", SSRF_ALLOW: "127.0.0.1/32" });
    ({ client } = await newAgent(t, { scopes: ["codes:*"] }));
    await t.admin.raw("POST", "/api/policies", { name: "codes-users", subject: { all: true }, rules: [{ effect: "allow", scopes: ["codes:*"] }] });
  });
  afterAll(async () => {
    await t.close();
    await upstream.close();
  });

  it("a pattern RE2 cannot run (lookahead) is refused when the tool is defined, naming the field", async () => {
    const r = await request(`${t.url}/api/tools`, { headers: admin(), body: tool("lookahead", "^(?=a)a+$") });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe("invalid_request");
    expect(r.json.error.message).toContain("tool.actions.lookup.params");
  });

  it("^(a+)+$ is accepted, and a hostile value is refused at once instead of pinning the event loop", async () => {
    expect((await request(`${t.url}/api/tools`, { headers: admin(), body: tool("codes", "^(a+)+$") })).status).toBe(201);
    const before = upstream.paths.length;
    const err = await failure(client.call("codes", "lookup", { code: `${"a".repeat(4000)}!` }));
    expect(err?.status).toBe(400);
    expect(err?.code).toBe("invalid_request");
    expect(upstream.paths.length).toBe(before);
    expect((await client.call<any>("codes", "lookup", { code: "aaa" })).data.data.path).toBe("/lookup/aaa");
  });
});

describe("generic tools stored before patterns were RE2", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ UPSTREAM_MODE: "mock", SSRF_ALLOW: "127.0.0.1/32" });
  });
  afterAll(async () => {
    await t.close();
  });

  it("one whose schema RE2 cannot run is left out and logged; the others still load", async () => {
    const schema = (pattern: string) => ({
      type: "object",
      additionalProperties: false,
      required: ["code"],
      properties: { code: { type: "string", pattern } },
    });
    const tool = (name: string, pattern: string) => ({
      name,
      baseUrl: "http://127.0.0.1:9",
      actions: { lookup: { method: "GET", path: "/lookup/{code}", params: schema(pattern) } },
    });
    // As an older version stored them: straight into the store, without today's checks.
    await t.gateway.store.setMeta("generic_tools", JSON.stringify({ legacy: tool("legacy", "^(?=a)a+$"), fine: tool("fine", "^[a-z]+$") }));
    await t.gateway.toolbox.reload();
    expect(t.gateway.toolbox.catalog.hasTool("fine")).toBe(true);
    expect(t.gateway.toolbox.catalog.hasTool("legacy")).toBe(false);
    expect(t.logs.some((line) => line.includes("legacy") && line.includes("generic tool"))).toBe(true);
  });
});

describe("mock mode is sealed: nothing leaves 127.0.0.1", () => {
  let elsewhere: Awaited<ReturnType<typeof recordingUpstream>>;
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    // 127.0.0.2 is on this machine (the whole of 127/8 is loopback) but it is not 127.0.0.1: it stands
    // for "somewhere else" without sending a packet anywhere. The operator's allow-list would let it.
    elsewhere = await recordingUpstream("127.0.0.2");
    t = await startTestGateway({ UPSTREAM_MODE: "mock", SSRF_ALLOW: "127.0.0.0/8", FF_ASYNC: "on" });
    ({ client } = await newAgent(t, { scopes: ["serpapi:search"] }));
    await t.admin.raw("POST", "/api/policies", { name: "everything", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
  });
  afterAll(async () => {
    await t.close();
    await elsewhere.close();
  });

  it("a generic tool whose base URL is not 127.0.0.1 is refused when defined", async () => {
    const admin = { authorization: `Bearer ${t.adminKey}` };
    const defined = await request(`${t.url}/api/tools`, {
      headers: admin,
      body: { name: "away", baseUrl: elsewhere.base, actions: { ping: { method: "GET", path: "/ping" } } },
    });
    expect(defined.status).toBe(403);
    expect(defined.json.error).toMatchObject({ code: "ssrf_blocked", details: { reason: "mockMode" } });
    expect(defined.json.error.correlationId ?? defined.headers.get("x-correlation-id")).toBeTruthy();
    expect(elsewhere.paths).toEqual([]);
  });

  it("a job callback to anywhere but 127.0.0.1 is refused when the job is submitted", async () => {
    const token = await client.token();
    const submitted = await request(`${t.url}/api/jobs`, {
      headers: { authorization: `Bearer ${token}` },
      body: { tool: "serpapi", action: "search", params: { q: "x" }, callbackUrl: `${elsewhere.base}/hook` },
    });
    expect(submitted.status).toBe(403);
    expect(submitted.json.error).toMatchObject({ code: "ssrf_blocked", details: { reason: "mockMode" } });
    expect(elsewhere.paths).toEqual([]);
  });

  it("the mock resolver asks no DNS server: even a name the machine knows lands on the mock", async () => {
    // os.hostname() resolves through /etc/hosts here; a resolver falling back to the system would return that.
    expect(await mockResolver()(os.hostname())).toEqual(["93.184.215.14"]);
    expect(await mockResolver()("localhost")).toEqual(["127.0.0.1"]);
  });
});
