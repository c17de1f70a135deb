import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { AgentClient } from "../../src/client/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";

/**
 * The admin surface is authenticated in onRequest, before the body is read or validated, so an
 * anonymous caller learns nothing about admin schemas: every refusal is the same 401.
 */
describe("admin surface: authentication before parsing", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ BODY_LIMIT_BYTES: "2048", FF_ASYNC: "on" });
  });
  afterAll(async () => t.close());

  // Each of these is invalid for the route's schema (or its media type, or its size): before the
  // fix an anonymous caller got a 400/413/415 describing the admin schema.
  const invalidAdminCalls: [string, string, { rawBody?: string; headers?: Record<string, string> }][] = [
    ["POST", "/api/agents", { rawBody: JSON.stringify({ bogus: 1 }) }],
    ["POST", "/api/agents", { rawBody: "name=x", headers: { "content-type": "text/plain" } }],
    ["POST", "/api/agents", { rawBody: JSON.stringify({ name: "x".repeat(4000) }) }],
    ["POST", "/api/credentials", { rawBody: "{}" }],
    ["POST", "/api/tools", { rawBody: "[]" }],
    ["PUT", "/api/admin/chaos", { rawBody: "[]" }],
    ["POST", "/api/policies/explain", { rawBody: "{}" }],
    ["PATCH", "/api/policies/p1", { rawBody: "[]" }],
    ["GET", "/api/audit?bogus=1", {}],
    ["GET", "/api/agents?limit=abc", {}],
    ["GET", `/api/agents/${"a".repeat(300)}`, {}], // over the id's maxLength
    ["POST", `/api/tokens/${"a".repeat(300)}/revoke`, { rawBody: "{}" }],
    ["POST", "/api/credentials/serpapi/versions/abc/activate", { rawBody: "{}" }],
    ["GET", "/api/admin/keys", {}],
  ];

  it.each(invalidAdminCalls.map(([method, path, init]) => [method, path.length > 60 ? `${path.slice(0, 40)}…` : path, path, init] as const))(
    "%s %s without the admin key is a plain 401, whatever the body",
    async (method, _label, path, init) => {
      const r = await http(`${t.url}${path}`, { method, ...init, headers: { "content-type": "application/json", ...init.headers } });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe("admin_unauthorized");
      expect(r.json.error.correlationId).toBe(r.headers.get("x-correlation-id"));
      expect(r.json.error.details).toBeUndefined();
      expect(r.text).not.toMatch(/must|additional|property|schema|body\./i);
    },
  );

  it("an agent token is not an admin key", async () => {
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await t.admin.createAgent({ name: "not-an-admin", role: "researcher", publicKey: pair.publicKeyPem });
    const client = new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search"] });
    const r = await http(`${t.url}/api/agents`, {
      rawBody: "{}",
      headers: { "content-type": "application/json", authorization: `Bearer ${await client.token()}` },
    });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe("admin_unauthorized");
  });

  it("with the admin key the same bad bodies are validated and named", async () => {
    const r = await http(`${t.url}/api/agents`, {
      rawBody: JSON.stringify({ bogus: 1 }),
      headers: { "content-type": "application/json", authorization: `Bearer ${t.adminKey}` },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe("invalid_request");
  });

  it("every route declares who may call it; only the road's doors and the public probes are open at the HTTP layer", () => {
    const routes = t.gateway.app.routeAccess().filter((r) => r.method !== "HEAD");
    expect(routes.length).toBeGreaterThan(20);
    // A declaration is either `auth` (agents, or agents and operators) or an operator `role`; never both.
    const both = routes.filter((r) => r.auth !== undefined && r.role !== undefined).map((r) => `${r.method} ${r.url}`);
    expect(both).toEqual([]);
    const undeclared = routes
      .filter((r) => r.auth === undefined && r.role === undefined)
      .map((r) => `${r.method} ${r.url}`)
      .sort();
    // Public by nature: probes, the public signing keys, /metrics (METRICS_TOKEN guards it when set),
    // and the console's static files and sign-in (the key or cookie is checked by the handler).
    expect(undeclared).toEqual([
      "GET /.well-known/jwks.json",
      "GET /.well-known/oauth-authorization-server",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /api/console/session",
      "GET /console",
      "GET /console/*",
      "GET /health",
      "GET /metrics",
      "GET /ready",
      "POST /api/console/session",
    ]);
    // Operator routes (every admin route) declare the role they need.
    const byRole = routes.filter((r) => r.role !== undefined);
    expect(byRole.length).toBeGreaterThan(20);
    for (const r of byRole) expect(["viewer", "approver", "admin"]).toContain(r.role);
    const open = routes
      .filter((r) => r.auth === "none")
      .map((r) => `${r.method} ${r.url}`)
      .sort();
    // The road (and the token endpoint's proof of possession) authenticates these itself.
    // The MCP door checks the token itself (its refusal is the OAuth challenge); /oauth/token proves possession.
    expect(open).toEqual([
      "DELETE /mcp",
      "GET /mcp",
      "GET /oauth/authorize",
      "GET /v1/models",
      "POST /api/jobs",
      "POST /api/proxy",
      "POST /api/tokens",
      "POST /mcp",
      "POST /oauth/token",
      "POST /v1/chat/completions",
    ]);
  });
});

describe("GET /api/tools needs a credential", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t.close());

  it("refuses an anonymous caller and a bad token", async () => {
    const none = await http(`${t.url}/api/tools`);
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe("token_missing");
    const bad = await http(`${t.url}/api/tools`, { headers: { authorization: "Bearer not-a-token" } });
    expect(bad.status).toBe(401);
    expect(bad.json.error.code).toBe("token_invalid");
  });

  it("shows the admin every tool and action", async () => {
    const r = await http(`${t.url}/api/tools`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(r.status).toBe(200);
    const names = r.json.tools.map((a: { tool: string; action: string }) => `${a.tool}:${a.action}`);
    expect(names).toEqual(expect.arrayContaining(["serpapi:search", "http_fetch:get", "openai:chat", "gmail_send:send"]));
  });

  it("shows an agent only what its token's scopes and its policies let it call", async () => {
    const pair = generateAgentKeyPair("EdDSA");
    // The default researcher policy allows search, fetch and chat, and denies mail.
    const agent = await t.admin.createAgent({ name: "tools-viewer", role: "researcher", publicKey: pair.publicKeyPem });
    const client = new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search", "gmail_send:send"] });
    const r = await http(`${t.url}/api/tools`, { headers: { authorization: `Bearer ${await client.token()}` } });
    expect(r.status).toBe(200);
    expect(r.json.tools.map((a: { tool: string; action: string }) => `${a.tool}:${a.action}`)).toEqual(["serpapi:search"]);
    expect(r.json.tools[0].paramsSchema).toBeTypeOf("object");
  });
});

describe("GET /api/tools with policy enforcement off", () => {
  it("shows an agent what its token's scopes cover", async () => {
    const t = await startTestGateway({ FF_POLICY: "off" });
    try {
      const pair = generateAgentKeyPair("EdDSA");
      const agent = await t.admin.createAgent({ name: "tools-viewer-nopolicy", role: "researcher", publicKey: pair.publicKeyPem });
      const client = new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["http_fetch:*", "gmail_send:send"] });
      const r = await http(`${t.url}/api/tools`, { headers: { authorization: `Bearer ${await client.token()}` } });
      expect(r.json.tools.map((a: { tool: string; action: string }) => `${a.tool}:${a.action}`).sort()).toEqual([
        "gmail_send:send",
        "http_fetch:get",
        "http_fetch:head",
      ]);
    } finally {
      await t.close();
    }
  });
});
