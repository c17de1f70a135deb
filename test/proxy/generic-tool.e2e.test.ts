import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

describe("generic HTTP tools defined by configuration", () => {
  let upstream: http.Server;
  let base: string;
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (req.headers["x-api-key"] !== "crm-secret-1234") {
          res.writeHead(401, { "content-type": "application/json" });
          return res.end(JSON.stringify({ message: "bad key" }));
        }
        if (req.url?.startsWith("/v1/contacts/missing")) {
          res.writeHead(404, { "content-type": "application/json" });
          return res.end(JSON.stringify({ message: "no such contact" }));
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: true, method: req.method, url: req.url, body: body ? JSON.parse(body) : null }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    t = await startTestGateway({ UPSTREAM_MODE: "mock", SSRF_ALLOW: "127.0.0.1/32" });
    ({ client } = await newAgent(t, { scopes: ["crm:*"] }));
  });
  afterAll(async () => {
    await t.close();
    upstream.close();
  });

  const crm = () => ({
    name: "crm",
    baseUrl: base,
    auth: { in: "header", name: "X-Api-Key" },
    actions: {
      get_contact: {
        method: "GET",
        path: "/v1/contacts/{id}",
        params: {
          type: "object",
          additionalProperties: false,
          required: ["id"],
          properties: { id: { type: "string", maxLength: 64 }, fields: { type: "string" } },
        },
        cacheable: true,
      },
      create_contact: {
        method: "POST",
        path: "/v1/contacts",
        params: {
          type: "object",
          additionalProperties: false,
          required: ["email"],
          properties: { email: { type: "string", format: "email" }, name: { type: "string" } },
        },
      },
    },
  });

  it("is defined through the admin API, stored, and called like any tool with its credential injected", async () => {
    const created = await t.admin.defineTool(crm());
    expect(created.actions.sort()).toEqual(["create_contact", "get_contact"]);
    await t.admin.putCredential("crm", "crm-secret-1234");
    await t.admin.raw("POST", "/api/policies", { name: "crm-users", subject: { all: true }, rules: [{ effect: "allow", scopes: ["crm:*"] }] });

    const got = await client.call<any>("crm", "get_contact", { id: "a/b c", fields: "email" });
    expect(got.data.status).toBe(200);
    expect(got.data.data.url).toBe("/v1/contacts/a%2Fb%20c?fields=email");
    const made = await client.call<any>("crm", "create_contact", { email: "x@example.com", name: "X" });
    expect(made.data.data.body).toEqual({ email: "x@example.com", name: "X" });
    expect(seen.at(-1)!.headers["x-correlation-id"]).toBe(made.meta.correlationId);

    const bad = await client.call("crm", "create_contact", { email: "not-an-email" }).catch((e: GatewayClientError) => e);
    expect((bad as GatewayClientError).code).toBe("invalid_request");
    const missing = await client.call("crm", "get_contact", { id: "missing" }).catch((e: GatewayClientError) => e);
    expect((missing as GatewayClientError).status).toBe(404);
    expect((missing as GatewayClientError).code).toBe("upstream_client_error");
  });

  it("survives a restart (definitions live in the store)", async () => {
    await t.gateway.toolbox.reload();
    expect(t.gateway.toolbox.catalog.hasTool("crm")).toBe(true);
  });

  it("refuses bad definitions with the field path, built-in names, and base URLs that point inside", async () => {
    const admin = { authorization: `Bearer ${t.adminKey}` };
    const noActions = await request(`${t.url}/api/tools`, { headers: admin, body: { name: "x", baseUrl: base, actions: {} } });
    expect(noActions.status).toBe(400);
    expect(noActions.json.error.message).toContain("tool.actions");
    const badMethod = await request(`${t.url}/api/tools`, { headers: admin, body: { ...crm(), name: "y", actions: { a: { method: "TRACE", path: "/" } } } });
    expect(badMethod.status).toBe(400);
    expect(badMethod.json.error.message).toContain("tool.actions.a.method");
    const builtin = await request(`${t.url}/api/tools`, { headers: admin, body: { ...crm(), name: "serpapi" } });
    expect(builtin.status).toBe(409);
    const metadata = await request(`${t.url}/api/tools`, { headers: admin, body: { ...crm(), name: "meta", baseUrl: "http://169.254.169.254/latest" } });
    expect(metadata.status).toBe(403);
    expect(metadata.json.error.code).toBe("ssrf_blocked");
    const noAdmin = await request(`${t.url}/api/tools`, { body: crm() });
    expect(noAdmin.status).toBe(401);
  });

  it("is removed through the admin API", async () => {
    const admin = { authorization: `Bearer ${t.adminKey}` };
    expect((await request(`${t.url}/api/tools/crm`, { method: "DELETE", headers: admin })).status).toBe(204);
    expect((await request(`${t.url}/api/tools/crm`, { method: "DELETE", headers: admin })).status).toBe(404);
    const gone = await client.call("crm", "get_contact", { id: "1" }).catch((e: GatewayClientError) => e);
    expect((gone as GatewayClientError).code).toBe("unknown_tool");
  });
});
