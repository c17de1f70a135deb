import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";

/** The MCP door's own bookkeeping, in-process: what it counts, and what it may reuse between requests. */
describe("MCP door: what it counts, and what it keeps between requests", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ UPSTREAM_MODE: "mock", MOCK_LATENCY_MS: "0", MOCK_JITTER_MS: "0" });
    await gw.admin.putCredential("serpapi", "serpapi-door-secret-0001");
  });
  afterAll(async () => gw?.close());

  async function agentToken(role: string, scopes: string[]) {
    const pair = generateAgentKeyPair("EdDSA");
    const created = await gw.admin.createAgent({ name: `door-${role}-${randomUUID().slice(0, 8)}`, role, publicKey: pair.publicKeyPem });
    return { agentId: created.id, token: await new AgentClient({ baseUrl: gw.url, agentId: created.id, privateKey: pair.privateKeyPem, scopes }).token() };
  }

  const mcp = (token: string, body: unknown) =>
    http(`${gw.url}/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" },
      body,
    });

  async function validations(): Promise<number> {
    const text = (await http(`${gw.url}/metrics`)).text;
    const line = /^gateway_token_validations_total\{result="valid"\} (\d+)/m.exec(text);
    return Number(line?.[1] ?? 0);
  }

  it("a tools/call counts one token validation, as a REST call does, and still runs the road as the caller", async () => {
    await gw.admin.raw("POST", "/api/policies", {
      name: `door-${randomUUID().slice(0, 8)}`,
      subject: { role: "door-researcher" },
      rules: [{ effect: "allow", scopes: ["serpapi:search"] }],
    });
    const { agentId, token } = await agentToken("door-researcher", ["serpapi:search"]);

    let before = await validations();
    const rest = await http(`${gw.url}/api/proxy`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: { tool: "serpapi", action: "search", params: { q: "rest once" } },
    });
    expect(rest.status).toBe(200);
    expect((await validations()) - before).toBe(1);

    before = await validations();
    const call = await mcp(token, { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "serpapi__search", arguments: { q: "mcp once" } } });
    expect(call.status).toBe(200);
    expect(call.json.result.isError).toBeFalsy();
    expect(call.json.result.structuredContent.search_parameters.q).toBe("mcp once");
    expect((await validations()) - before).toBe(1);

    // The principal the door verified is the one the road authorizes and audits.
    const correlationId = call.json.result._meta.correlationId as string;
    const audit = await http(`${gw.url}/api/audit?limit=200`, { headers: { authorization: `Bearer ${gw.adminKey}` } });
    expect(audit.json.records).toEqual(expect.arrayContaining([expect.objectContaining({ correlationId, agentId, door: "mcp", decision: "allow" })]));

    // A scope the token lacks is still refused by the road.
    const denied = await mcp(token, {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "openai__chat", arguments: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] } },
    });
    expect(denied.json.result.isError).toBe(true);

    // A bad token never reaches the road: the HTTP-level challenge, counted once as invalid.
    const bad = await mcp(`${token.slice(0, -4)}AAAA`, {
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "serpapi__search", arguments: { q: "x" } },
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toMatch(/^Bearer resource_metadata=".*\/\.well-known\/oauth-protected-resource", error="invalid_token"/);
  });

  it("tools/list answers from its per-caller listing until a policy changes, then judges again", async () => {
    const role = `door-lister-${randomUUID().slice(0, 8)}`;
    const created = await gw.admin.raw("POST", "/api/policies", {
      name: `door-${role}`,
      subject: { role },
      rules: [{ effect: "allow", scopes: ["serpapi:search"] }],
    });
    const policyId = (created as { id: string }).id;
    const { token } = await agentToken(role, ["serpapi:search", "openai:chat"]);
    const names = async () =>
      ((await mcp(token, { jsonrpc: "2.0", id: 1, method: "tools/list" })).json.result.tools as { name: string }[]).map((t) => t.name).sort();
    expect(await names()).toEqual(["serpapi__search"]);
    expect(await names()).toEqual(["serpapi__search"]);
    // A wider policy shows at once...
    await gw.admin.raw("PUT", `/api/policies/${policyId}`, {
      name: `door-${role}`,
      subject: { role },
      rules: [{ effect: "allow", scopes: ["serpapi:search", "openai:chat"] }],
    });
    expect(await names()).toEqual(["openai__chat", "serpapi__search"]);
    // ...and a deny as well.
    await gw.admin.raw("PUT", `/api/policies/${policyId}`, {
      name: `door-${role}`,
      subject: { role },
      rules: [
        { effect: "allow", scopes: ["serpapi:search", "openai:chat"] },
        { effect: "deny", scopes: ["serpapi:search"] },
      ],
    });
    expect(await names()).toEqual(["openai__chat"]);
    // Another token of the same role with fewer scopes sees only what its scopes cover.
    const narrow = await agentToken(role, ["openai:chat"]);
    const listed = await mcp(narrow.token, { jsonrpc: "2.0", id: 2, method: "tools/list" });
    expect((listed.json.result.tools as { name: string }[]).map((t) => t.name)).toEqual(["openai__chat"]);
  });
});
