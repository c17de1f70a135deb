import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { AdminClient, AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { http } from "../helpers/gateway.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { accessTokenOf, connectWithAgentKey, connectWithToken, FetchLog } from "../helpers/mcp.js";

const ALL_SCOPES = "serpapi:search http_fetch:* openai:chat gmail_send:send";

/** The MCP door end to end: the official SDK client against a real gateway process. */
describe("MCP: the official SDK client against a gateway process", () => {
  const adminKey = `admin-${randomBytes(16).toString("hex")}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-mcp-"));
  let gw: GatewayProcess;
  let admin: AdminClient;

  async function agent(role: string) {
    const pair = generateAgentKeyPair("EdDSA");
    const created = await admin.createAgent({ name: `mcp-${role}-${randomUUID().slice(0, 8)}`, role, publicKey: pair.publicKeyPem });
    return { agentId: created.id, privateKeyPem: pair.privateKeyPem };
  }

  beforeAll(async () => {
    gw = await startGatewayProcess({
      DATA_DIR: dir,
      GATEWAY_ADMIN_KEY: adminKey,
      GATEWAY_MASTER_KEY: randomBytes(32).toString("base64"),
      UPSTREAM_MODE: "mock",
      RETRY_BASE_MS: "1",
      SSRF_ALLOW: "127.0.0.1/32",
    });
    admin = new AdminClient({ baseUrl: gw.url, adminKey });
    for (const tool of ["serpapi", "openai", "gmail_send"]) await admin.putCredential(tool, `${tool}-mcp-secret-0001`);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("signs in from the 401: protected resource metadata, authorization server metadata, then a private_key_jwt token", async () => {
    const researcher = await agent("researcher");
    const log = new FetchLog();
    const { client, transport } = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES }, log);
    const paths = log.paths();
    expect(paths[0]).toBe("POST /mcp 401");
    const prm = paths.findIndex((p) => p.startsWith("GET /.well-known/oauth-protected-resource") && p.endsWith(" 200"));
    const asm = paths.indexOf("GET /.well-known/oauth-authorization-server 200");
    const token = paths.indexOf("POST /oauth/token 200");
    expect(prm).toBeGreaterThan(0);
    expect(asm).toBeGreaterThan(prm);
    expect(token).toBeGreaterThan(asm);
    expect(paths[token + 1]).toBe("POST /mcp 200");
    expect(client.getServerVersion()?.name).toBe("4runr-gateway");
    expect(transport.protocolVersion).toBe("2025-11-25");
    await client.close();
  });

  it("a call policy holds for approval is a tool result naming the approval (not an error); approved, it runs", async () => {
    const assistant = await agent("assistant");
    await admin.raw("POST", "/api/policies", {
      name: `held-${assistant.agentId}`,
      subject: { agentId: assistant.agentId },
      rules: [
        { effect: "allow", scopes: ["gmail_send:send"], guards: { "recipients.domain": { oneOf: ["example.com"] } }, requireApproval: { ttlSeconds: 600 } },
      ],
    });
    const { client } = await connectWithAgentKey(gw.url, { ...assistant, scope: ALL_SCOPES });
    const held = await client.callTool({ name: "gmail_send__send", arguments: { to: ["someone@outside.test"], subject: "hi", text: "held" } });
    expect(held.isError).toBeFalsy();
    const approval = (held.structuredContent as { approval: { id: string; status: string; argsHash: string } }).approval;
    expect(approval).toMatchObject({ status: "pending", argsHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(held.content)).toContain(`approval_pending: the call is held for a person's approval (approval ${approval.id}`);
    const approved = await admin.raw<{ status: string; result: unknown }>("POST", `/api/approvals/${approval.id}/approve`);
    expect(approved.status).toBe("executed");
    await client.close();
  });

  it("negotiates the protocol version the client asks for (2025-06-18 and newer)", async () => {
    const researcher = await agent("researcher");
    const { client, provider } = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES });
    const token = accessTokenOf(provider);
    await client.close();
    for (const version of ["2025-06-18", "2025-11-25"]) {
      const r = await rpc(gw.url, token, {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: version, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
      });
      expect(r.status).toBe(200);
      expect(r.json.result.protocolVersion).toBe(version);
      expect(r.json.result.capabilities.tools).toBeDefined();
    }
  });

  it("tools/list is deny-by-default: only what the token's scopes and the agent's policies allow", async () => {
    const researcher = await agent("researcher");
    const { client } = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES });
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    // The default researcher policy denies gmail_send although the token's scopes name it.
    expect(names).toEqual(["http_fetch__get", "http_fetch__head", "openai__chat", "serpapi__search"]);
    const search = tools.find((t) => t.name === "serpapi__search")!;
    expect(search.inputSchema.required).toEqual(["q"]);
    expect(search.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(search.description).toMatch(/search/i);
    for (const t of tools) expect(t.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    await client.close();

    // Scopes narrow what policy allows: a token for search alone lists search alone.
    const narrow = await connectWithAgentKey(gw.url, { ...(await agent("researcher")), scope: "serpapi:search" });
    expect((await narrow.client.listTools()).tools.map((t) => t.name)).toEqual(["serpapi__search"]);
    await narrow.client.close();

    // An assistant may send mail: the tool shows, marked destructive and not idempotent.
    const assistant = await connectWithAgentKey(gw.url, { ...(await agent("assistant")), scope: ALL_SCOPES });
    const mail = (await assistant.client.listTools()).tools.find((t) => t.name === "gmail_send__send");
    expect(mail?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false });
    await assistant.client.close();

    // A role no policy mentions sees nothing at all.
    const nobody = await connectWithAgentKey(gw.url, { ...(await agent("intern")), scope: ALL_SCOPES });
    expect((await nobody.client.listTools()).tools).toEqual([]);
    await nobody.client.close();
  });

  it("tools/call runs the road: upstream data as structuredContent, correlation id, cache status and attempts in _meta, and an audit record", async () => {
    const researcher = await agent("researcher");
    const { client } = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES });
    const q = `mcp-${randomUUID()}`;
    const first = await client.callTool({ name: "serpapi__search", arguments: { q } });
    expect(first.isError).toBeFalsy();
    const data = first.structuredContent as { search_parameters: { q: string }; organic_results: unknown[] };
    expect(data.search_parameters.q).toBe(q);
    expect(JSON.parse(text(first))).toEqual(data);
    expect(first._meta).toMatchObject({ cache: "miss", attempts: 1 });
    expect(typeof first._meta?.correlationId).toBe("string");
    const second = await client.callTool({ name: "serpapi__search", arguments: { q } });
    expect(second._meta?.cache).toBe("hit");
    // The stored credential never reaches the agent.
    expect(JSON.stringify(first)).not.toContain("serpapi-mcp-secret-0001");

    const correlationId = String(first._meta!.correlationId);
    const audit = await pollAudit(correlationId);
    expect(audit).toMatchObject({ agentId: researcher.agentId, tool: "serpapi", action: "search", decision: "allow", status: 200, cache: "miss", door: "mcp" });
    const metrics = (await http(`${gw.url}/metrics`)).text;
    expect(metrics).toMatch(/gateway_requests_total\{tool="serpapi",action="search",status="2xx",door="mcp"\} [1-9]/);
    await client.close();
  });

  it("a refusal, bad arguments and an upstream failure are tool results with isError naming the gateway code", async () => {
    const researcher = await agent("researcher");
    const { client } = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES });

    const denied = await client.callTool({ name: "gmail_send__send", arguments: { to: ["a@example.org"], subject: "hi", text: "hello" } });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toMatch(/^scope_denied: /);
    expect((denied.structuredContent as { error: { code: string } }).error.code).toBe("scope_denied");

    const invalid = await client.callTool({ name: "serpapi__search", arguments: { engine: "google" } });
    expect(invalid.isError).toBe(true);
    expect(text(invalid)).toMatch(/^invalid_request: .*params\.q is required/);
    const wrongType = await client.callTool({ name: "serpapi__search", arguments: { q: 42 } });
    expect(wrongType.isError).toBe(true);
    expect(text(wrongType)).toMatch(/^invalid_request: /);

    await http(`${gw.url}/api/admin/chaos/openai`, { method: "PUT", headers: { authorization: `Bearer ${adminKey}` }, body: { error500: 1 } });
    try {
      const failed = await client.callTool({ name: "openai__chat", arguments: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] } });
      expect(failed.isError).toBe(true);
      expect(text(failed)).toMatch(/^(upstream_error|circuit_open): /);
    } finally {
      await http(`${gw.url}/api/admin/chaos/openai`, { method: "DELETE", headers: { authorization: `Bearer ${adminKey}` } });
    }

    // A name that is no tool at all is a protocol error (MCP: -32602), not a tool result.
    const unknown = await client.callTool({ name: "nope__nothing", arguments: {} }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(McpError);
    expect((unknown as McpError).code).toBe(-32602);
    await client.close();
  });

  it("the idempotency key comes from _meta: a repeated send is replayed, not sent twice", async () => {
    const assistant = await agent("assistant");
    const { client } = await connectWithAgentKey(gw.url, { ...assistant, scope: ALL_SCOPES });
    const key = `mcp-${randomUUID()}`;
    const args = { to: ["team@example.org"], subject: "report", text: "done" };
    const first = await client.callTool({ name: "gmail_send__send", arguments: args, _meta: { idempotencyKey: key } });
    expect(first.isError, text(first)).toBeFalsy();
    const again = await client.callTool({ name: "gmail_send__send", arguments: args, _meta: { idempotencyKey: key } });
    expect(again._meta?.replayed).toBe(true);
    expect(again.structuredContent).toEqual(first.structuredContent);
    const bad = await client.callTool({ name: "gmail_send__send", arguments: args, _meta: { idempotencyKey: "" } });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/^invalid_request: /);
    await client.close();
  });

  it("answers without a token, or with a bad one, by the 401 challenge MCP clients follow", async () => {
    const none = await rpc(gw.url, undefined, { jsonrpc: "2.0", id: 1, method: "tools/list" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource"`);
    const bad = await rpc(gw.url, "not-a-token", { jsonrpc: "2.0", id: 1, method: "tools/list" });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toMatch(
      /^Bearer resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource", error="invalid_token", error_description="[^"]+"$/,
    );
    const get = await http(`${gw.url}/mcp`, { headers: { accept: "text/event-stream" } });
    expect(get.status).toBe(401);
  });

  it("a malformed JSON-RPC message gets its JSON-RPC error, never a 5xx", async () => {
    const researcher = await agent("researcher");
    const { client, provider } = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES });
    const token = accessTokenOf(provider);
    await client.close();
    const parse = await rpcRaw(gw.url, token, "{not json");
    expect(parse.status).toBe(400);
    expect(parse.json.error.code).toBe(-32700);
    const invalid = await rpcRaw(gw.url, token, JSON.stringify({ jsonrpc: "1.0", id: 1 }));
    expect(invalid.status).toBeLessThan(500);
    expect([-32600, -32700]).toContain(invalid.json.error.code);
    const method = await rpc(gw.url, token, { jsonrpc: "2.0", id: 7, method: "no/such/method" });
    expect(method.status).toBe(200);
    expect(method.json).toMatchObject({ id: 7, error: { code: -32601 } });
    const badParams = await rpc(gw.url, token, { jsonrpc: "2.0", id: 8, method: "tools/call", params: { name: 5 } });
    expect(badParams.status).toBeLessThan(500);
    expect(badParams.json.error.code).toBe(-32602);
    const wrongType = await rpcRaw(gw.url, token, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }), "text/plain");
    expect(wrongType.status).toBe(415);
    const getStream = await http(`${gw.url}/mcp`, { headers: { accept: "text/event-stream", authorization: `Bearer ${token}` } });
    expect(getStream.status).toBe(405);
    // A batch (older protocol versions) is answered call by call, each with its own correlation id.
    const batch = await rpc(gw.url, token, [
      { jsonrpc: "2.0", id: "a", method: "tools/call", params: { name: "serpapi__search", arguments: { q: `batch a ${randomUUID()}` } } },
      { jsonrpc: "2.0", id: "b", method: "tools/call", params: { name: "serpapi__search", arguments: {} } },
    ]);
    expect(batch.status).toBe(200);
    const byId = Object.fromEntries(
      (batch.json as { id: string; result: { isError?: boolean; _meta: { correlationId: string } } }[]).map((m) => [m.id, m.result]),
    );
    expect(byId.a!.isError).toBeFalsy();
    expect(byId.b!.isError).toBe(true);
    expect(byId.a!._meta.correlationId).not.toBe(byId.b!._meta.correlationId);
  });

  it("a token revoked mid-session is refused at once; a client holding the agent key signs in again, a suspended agent cannot", async () => {
    const researcher = await agent("researcher");
    const issued = await connectWithAgentKey(gw.url, { ...researcher, scope: ALL_SCOPES });
    // A client with a fixed token: the very next request after the revocation fails.
    const fixed = await connectWithToken(`${gw.url}/mcp`, accessTokenOf(issued.provider));
    expect((await fixed.client.listTools()).tools.length).toBeGreaterThan(0);
    await admin.raw("POST", `/api/agents/${researcher.agentId}/revoke-tokens`);
    const refused = await fixed.client.listTools().catch((e: unknown) => e);
    expect((refused as { code?: number }).code).toBe(401);
    expect(String(refused)).toMatch(/token_revoked/);
    await fixed.client.close();

    // The key-holding client meets the 401 and gets a fresh token through /oauth/token.
    const tokenRequests = () => issued.log.paths().filter((p) => p === "POST /oauth/token 200").length;
    const before = tokenRequests();
    const again = await issued.client.callTool({ name: "serpapi__search", arguments: { q: "after revocation" } });
    expect(again.isError).toBeFalsy();
    expect(tokenRequests()).toBe(before + 1);

    // Suspended: the token fails and no new one is issued.
    await admin.raw("POST", `/api/agents/${researcher.agentId}/suspend`);
    const suspended = await issued.client.callTool({ name: "serpapi__search", arguments: { q: "suspended" } }).catch((e: unknown) => e);
    expect(suspended).toBeInstanceOf(Error);
    expect(tokenRequests()).toBe(before + 1);
    await issued.client.close();
  });

  it("generic HTTP tools are MCP tools too, and limits judged at call time refuse as tool errors", async () => {
    await admin.raw("POST", "/api/tools", {
      name: "crm",
      baseUrl: "http://127.0.0.1:9/api", // only listed here, never called (mock mode is sealed to 127.0.0.1)
      auth: { in: "none" },
      actions: {
        get_contact: {
          method: "GET",
          path: "/contacts/{id}",
          description: "Reads a contact",
          params: { type: "object", required: ["id"], properties: { id: { type: "string" } }, additionalProperties: false },
        },
        delete_contact: { method: "DELETE", path: "/contacts/{id}", params: { type: "object", required: ["id"], properties: { id: { type: "string" } } } },
      },
    });
    await admin.raw("POST", "/api/policies", {
      name: "crm-readers",
      subject: { role: "crm-reader" },
      rules: [
        { effect: "allow", scopes: ["crm:get_contact", "serpapi:search"] },
        { id: "one-search", effect: "allow", scopes: ["serpapi:search"], quota: { limit: 1, per: "day" } },
      ],
    });
    const { client } = await connectWithAgentKey(gw.url, { ...(await agent("crm-reader")), scope: "crm:* serpapi:search" });
    const { tools } = await client.listTools();
    // delete_contact is in the token's scopes but no policy grants it: not shown.
    expect(tools.map((t) => t.name).sort()).toEqual(["crm__get_contact", "serpapi__search"]);
    const contact = tools.find((t) => t.name === "crm__get_contact")!;
    expect(contact.description).toBe("Reads a contact");
    expect(contact.inputSchema).toMatchObject({ required: ["id"], properties: { id: { type: "string" } } });
    expect(contact.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });

    // The quota is not a reason to hide the tool; it refuses the second call.
    expect((await client.callTool({ name: "serpapi__search", arguments: { q: `quota ${randomUUID()}` } })).isError).toBeFalsy();
    const over = await client.callTool({ name: "serpapi__search", arguments: { q: `quota ${randomUUID()}` } });
    expect(over.isError).toBe(true);
    expect(text(over)).toMatch(/^quota_exceeded: /);
    expect((over.structuredContent as { error: { retryAfterSeconds?: number } }).error.retryAfterSeconds).toBeGreaterThan(0);
    await client.close();
  });

  it("the gateway's own SDK signs in at /oauth/token and hands its fetch to the official MCP client", async () => {
    const researcher = await agent("researcher");
    const sdk = new AgentClient({
      baseUrl: gw.url,
      agentId: researcher.agentId,
      privateKey: researcher.privateKeyPem,
      scopes: ["serpapi:search"],
      tokenEndpoint: "oauth",
    });
    const { url, fetch } = sdk.mcpTransportOptions();
    const client = new Client({ name: "sdk-e2e", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url, { fetch }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["serpapi__search"]);
    const result = await client.callTool({ name: "serpapi__search", arguments: { q: "through the sdk" } });
    expect(result.isError).toBeFalsy();
    expect((await sdk.whoami()).scopes).toEqual(["serpapi:search"]);
    await client.close();
  });

  async function pollAudit(correlationId: string) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = await http(`${gw.url}/api/audit?limit=200`, { headers: { authorization: `Bearer ${adminKey}` } });
      const found = (r.json.records as { correlationId: string }[]).find((e) => e.correlationId === correlationId);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no audit record for ${correlationId}`);
  }
});

function text(result: object): string {
  return (result as { content: { type: string; text: string }[] }).content[0]!.text;
}

async function rpc(url: string, token: string | undefined, body: unknown) {
  return rpcRaw(url, token, JSON.stringify(body));
}

async function rpcRaw(url: string, token: string | undefined, body: string, contentType = "application/json") {
  return http(`${url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": contentType,
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    rawBody: body,
  });
}
