import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startTestGateway, TestClock, type TestGateway } from "../helpers/gateway.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { newAgent } from "../helpers/agents.js";
import { ROOT } from "../helpers/promtool.js";
import { AdminClient } from "../../src/client/index.js";
import type { OperatorRole } from "../../src/operators/index.js";

let counter = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;

/** Routes anyone may call, or that authenticate agents (with their token) rather than operators. */
const PUBLIC_ROUTES = new Set([
  "GET /health",
  "GET /ready",
  "GET /metrics",
  "GET /.well-known/jwks.json",
  "POST /api/proxy",
  "GET /api/tools",
  "POST /api/tokens",
  "GET /api/tokens/self",
  "POST /api/jobs",
  "POST /v1/chat/completions", // the OpenAI-compatible door: an agent's token
  "GET /v1/models",
  "GET /api/jobs/:id", // an agent's own job, or any job for an operator (checked in the handler)
  "GET /api/approvals/:id", // the asking agent's own approval, or any for an operator (auth: agent or admin)
  "POST /api/approvals/:id/approve", // an operator (approver or higher, checked in the handler); an agent is told 403
  "POST /api/approvals/:id/deny",
  "GET /.well-known/oauth-authorization-server", // OAuth metadata: public like the JWKS
  "GET /.well-known/oauth-protected-resource",
  "GET /.well-known/oauth-protected-resource/mcp",
  "POST /oauth/token", // an agent's signed assertion
  "GET /oauth/authorize",
  "POST /mcp", // the MCP door: an agent's token
  "GET /mcp",
  "DELETE /mcp",
  "POST /api/console/session", // the sign-in itself
  "GET /api/console/session", // who is signed in: nobody is an answer too
  "GET /console",
  "GET /console/*",
]);

interface Fixture {
  url: string;
  body?: unknown;
  /** The status an allowed caller gets. */
  ok: number;
}

describe("operators and roles", () => {
  const clock = new TestClock(Date.now());
  let t: TestGateway;
  const keys = {} as Record<OperatorRole, string>;
  let agentId: string;
  let policyId: string;

  const as = (key: string | undefined, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
    http(`${t.url}${url}`, {
      method,
      headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...headers },
      ...(body === undefined ? {} : { body }),
    });

  beforeAll(async () => {
    t = await startTestGateway(
      { UPSTREAM_MODE: "mock", SSRF_ALLOW: "127.0.0.1/32", POLICY_DEFAULTS: "off", CONSOLE_SESSION_TTL_SECONDS: "3600", CONSOLE_SESSION_IDLE_SECONDS: "600" },
      { now: clock.now },
    );
    for (const role of ["viewer", "approver", "admin"] as const) {
      const created = await as(t.adminKey, "POST", "/api/operators", { name: `the-${role}`, role });
      expect(created.status).toBe(201);
      keys[role] = created.json.key;
    }
    const agent = await t.admin.createAgent({ name: unique("op-agent"), role: "researcher", publicKey: generateAgentKeyPair("EdDSA").publicKeyPem });
    agentId = agent.id;
    const policy = await as(t.adminKey, "POST", "/api/policies", {
      name: unique("policy"),
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["serpapi:search"] }],
    });
    policyId = policy.json.id;
    await t.admin.putCredential("serpapi", "serp-secret-000001");
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A fresh, valid request for each declared route, so an allowed caller gets a 2xx every time. */
  async function fixture(route: string): Promise<Fixture> {
    const admin = (method: string, url: string, body?: unknown) => as(t.adminKey, method, url, body);
    switch (route) {
      case "POST /api/agents":
        return { url: "/api/agents", body: { name: unique("op-agent"), role: "researcher", publicKey: generateAgentKeyPair("EdDSA").publicKeyPem }, ok: 201 };
      case "GET /api/agents":
        return { url: "/api/agents", ok: 200 };
      case "GET /api/agents/:id":
        return { url: `/api/agents/${agentId}`, ok: 200 };
      case "POST /api/agents/:id/suspend":
        return { url: `/api/agents/${agentId}/suspend`, ok: 200 };
      case "POST /api/agents/:id/activate":
        return { url: `/api/agents/${agentId}/activate`, ok: 200 };
      case "POST /api/agents/:id/revoke-tokens":
        return { url: `/api/agents/${agentId}/revoke-tokens`, ok: 200 };
      case "POST /api/tokens/:tokenId/revoke": {
        const { client } = await newAgent(t, { scopes: ["serpapi:search"] });
        return { url: `/api/tokens/${(await client.issueToken()).tokenId}/revoke`, ok: 200 };
      }
      case "GET /api/admin/keys":
        return { url: "/api/admin/keys", ok: 200 };
      case "POST /api/admin/keys/rotate":
        return { url: "/api/admin/keys/rotate", ok: 200 };
      case "POST /api/credentials":
        return { url: "/api/credentials", body: { tool: "serpapi", secret: `serp-secret-${unique("v")}`, activate: false }, ok: 201 };
      case "GET /api/credentials":
        return { url: "/api/credentials", ok: 200 };
      case "GET /api/credentials/:tool":
        return { url: "/api/credentials/serpapi", ok: 200 };
      case "POST /api/credentials/:tool/versions/:version/activate":
        return { url: "/api/credentials/serpapi/versions/1/activate", ok: 200 };
      case "GET /api/audit":
        return { url: "/api/audit?limit=5", ok: 200 };
      case "POST /api/tools": {
        return {
          url: "/api/tools",
          body: {
            name: unique("tool").replaceAll("-", "_"),
            baseUrl: "http://127.0.0.1:9",
            auth: { in: "none" },
            actions: { ping: { method: "GET", path: "/ping", params: { type: "object" } } },
          },
          ok: 201,
        };
      }
      case "GET /api/tools/generic":
        return { url: "/api/tools/generic", ok: 200 };
      case "DELETE /api/tools/:name": {
        const name = unique("tool").replaceAll("-", "_");
        expect(
          (
            await admin("POST", "/api/tools", {
              name,
              baseUrl: "http://127.0.0.1:9",
              auth: { in: "none" },
              actions: { ping: { method: "GET", path: "/ping", params: { type: "object" } } },
            })
          ).status,
        ).toBe(201);
        return { url: `/api/tools/${name}`, ok: 204 };
      }
      case "GET /api/admin/chaos":
        return { url: "/api/admin/chaos", ok: 200 };
      case "PUT /api/admin/chaos":
        return { url: "/api/admin/chaos", body: {}, ok: 200 };
      case "PUT /api/admin/chaos/:tool":
        return { url: "/api/admin/chaos/serpapi", body: { error500: 0 }, ok: 200 };
      case "DELETE /api/admin/chaos":
        return { url: "/api/admin/chaos", ok: 200 };
      case "DELETE /api/admin/chaos/:tool":
        return { url: "/api/admin/chaos/serpapi", ok: 200 };
      case "POST /api/policies":
        return {
          url: "/api/policies",
          body: { name: unique("policy"), subject: { role: "nobody" }, rules: [{ effect: "allow", scopes: ["serpapi:search"] }] },
          ok: 201,
        };
      case "GET /api/policies":
        return { url: "/api/policies", ok: 200 };
      case "GET /api/policies/:id":
        return { url: `/api/policies/${policyId}`, ok: 200 };
      case "PUT /api/policies/:id":
        return {
          url: `/api/policies/${policyId}`,
          body: {
            name: (await admin("GET", `/api/policies/${policyId}`)).json.name,
            subject: { all: true },
            rules: [{ effect: "allow", scopes: ["serpapi:search"] }],
            description: unique("d"),
          },
          ok: 200,
        };
      case "PATCH /api/policies/:id":
        return { url: `/api/policies/${policyId}`, body: { description: unique("d") }, ok: 200 };
      case "DELETE /api/policies/:id": {
        const created = await admin("POST", "/api/policies", {
          name: unique("policy"),
          subject: { role: "nobody" },
          rules: [{ effect: "deny", scopes: ["*"] }],
        });
        return { url: `/api/policies/${created.json.id}`, ok: 204 };
      }
      case "POST /api/policies/explain":
        return { url: "/api/policies/explain", body: { agentId, tool: "serpapi", action: "search", params: { q: "x" } }, ok: 200 };
      case "POST /api/operators":
        return { url: "/api/operators", body: { name: unique("op"), role: "viewer" }, ok: 201 };
      case "GET /api/operators":
        return { url: "/api/operators", ok: 200 };
      case "POST /api/operators/:id/disable":
      case "POST /api/operators/:id/enable":
      case "POST /api/operators/:id/rotate": {
        const created = await admin("POST", "/api/operators", { name: unique("op"), role: "viewer" });
        return { url: `/api/operators/${created.json.id}/${route.split("/").at(-1)}`, ok: 200 };
      }
      case "GET /api/operators/sessions":
        return { url: "/api/operators/sessions", ok: 200 };
      case "DELETE /api/operators/sessions/:handle": {
        const signedIn = await http(`${t.url}/api/console/session`, { body: { key: keys.viewer } });
        const sessionId = (signedIn.headers.get("set-cookie") ?? "").split(";")[0]!.split("=")[1]!;
        return { url: `/api/operators/sessions/${createHash("sha256").update(sessionId).digest("hex").slice(0, 12)}`, ok: 204 };
      }
      case "DELETE /api/console/session":
        return { url: "/api/console/session", ok: 204 };
      case "GET /api/console/metrics":
        return { url: "/api/console/metrics", ok: 200 };
      case "GET /api/audit/verify":
        return { url: "/api/audit/verify", ok: 200 };
      case "GET /api/approvals":
        return { url: "/api/approvals", ok: 200 };
      case "GET /api/mcp-servers":
        return { url: "/api/mcp-servers", ok: 200 };
      // No upstream MCP server here: past the role check the handler answers "not found" / a bad body.
      case "GET /api/mcp-servers/:name":
        return { url: "/api/mcp-servers/none-here", ok: 404 };
      case "POST /api/mcp-servers/:name/refresh":
        return { url: "/api/mcp-servers/none-here/refresh", ok: 404 };
      case "DELETE /api/mcp-servers/:name":
        return { url: "/api/mcp-servers/none-here", ok: 404 };
      case "POST /api/mcp-servers":
        return { url: "/api/mcp-servers", body: {}, ok: 400 };
      default:
        throw new Error(`no fixture for ${route}: add one (and decide its role)`);
    }
  }

  it("every route declares the role it needs, unless it is public or an agent's", () => {
    const undeclared = t.gateway.routes.filter((r) => r.role === undefined && !PUBLIC_ROUTES.has(`${r.method} ${r.url}`)).map((r) => `${r.method} ${r.url}`);
    expect(undeclared).toEqual([]);
  });

  it("walks every declared route × role: 401 without or with a wrong key, 403 below the role, 2xx at or above it", async () => {
    const rank = { viewer: 1, approver: 2, admin: 3 } as const;
    const seen: string[] = [];
    for (const route of t.gateway.routes.filter((r) => r.role !== undefined)) {
      const name = `${route.method} ${route.url}`;
      seen.push(name);
      const { url, body } = await fixture(name);
      const none = await as(undefined, route.method, url, body);
      expect([name, none.status, none.json?.error?.code]).toEqual([name, 401, "admin_unauthorized"]);
      expect(none.json.error.correlationId).toBe(none.headers.get("x-correlation-id"));
      const wrong = await as("op_not-a-real-key-at-all-000000000000000000", route.method, url, body);
      expect([name, wrong.status]).toEqual([name, 401]);
      for (const role of ["viewer", "approver", "admin"] as const) {
        const f = await fixture(name);
        const r = await as(keys[role], route.method, f.url, f.body);
        if (rank[role] >= rank[route.role!]) expect([name, role, r.status, r.text.slice(0, 300)]).toEqual([name, role, f.ok, r.text.slice(0, 300)]);
        else {
          expect([name, role, r.status, r.json?.error?.code]).toEqual([name, role, 403, "operator_forbidden"]);
          expect(r.json.error.details).toEqual({ role, needed: route.role });
        }
      }
      // The bootstrap admin key is an admin.
      const f = await fixture(name);
      expect([name, (await as(t.adminKey, route.method, f.url, f.body)).status]).toEqual([name, f.ok]);
    }
    expect(seen.length).toBeGreaterThan(30);
  });

  it("walks the approval decision routes × role too: a viewer is refused like on every role route, an approver and an admin decide and are recorded by name", async () => {
    // The decision routes also admit agent tokens (to tell an agent 403, not 401), so they check the
    // role in the handler rather than declaring `config: { role }`: this walk holds them to the same rules.
    await as(t.adminKey, "POST", "/api/policies", {
      name: unique("held"),
      subject: { role: "held-caller" },
      rules: [
        { effect: "allow", scopes: ["serpapi:search"] },
        { effect: "allow", scopes: ["serpapi:search"], requireApproval: { approvers: ["ops"] } },
      ],
    });
    const { client, agent } = await newAgent(t, { role: "held-caller", scopes: ["serpapi:search"] });
    const token = await client.token();
    let q = 0;
    const held = async () => {
      const r = await http(`${t.url}/api/proxy`, {
        headers: { authorization: `Bearer ${token}` },
        body: { tool: "serpapi", action: "search", params: { q: `held ${++q}` } },
      });
      expect(r.status, r.text).toBe(202);
      return r.json.approval.id as string;
    };
    const deciders: [string, string | undefined, string][] = [
      ["viewer", keys.viewer, "the-viewer"],
      ["approver", keys.approver, "the-approver"],
      ["admin", keys.admin, "the-admin"],
      ["bootstrap", t.adminKey, "bootstrap-admin"],
    ];
    for (const decision of ["approve", "deny"] as const) {
      const name = `POST /api/approvals/:id/${decision}`;
      for (const [role, key, operator] of deciders) {
        const id = await held();
        const r = await as(key, "POST", `/api/approvals/${id}/${decision}`, { reason: `${role} says so` });
        if (role === "viewer") {
          expect([name, role, r.status, r.json.error.code]).toEqual([name, role, 403, "operator_forbidden"]);
          expect(r.json.error.details).toEqual({ role: "viewer", needed: "approver" });
          // Still pending, and the refusal is in the audit trail with who tried.
          expect((await as(keys.viewer, "GET", `/api/approvals/${id}`)).json).toMatchObject({ status: "pending", decidedBy: null });
          const tried = await as(t.adminKey, "GET", `/api/audit?correlationId=${r.headers.get("x-correlation-id")}`);
          expect(tried.json.records).toEqual([
            expect.objectContaining({ operator: "the-viewer", decision: "deny", reason: "operator_forbidden", status: 403 }),
          ]);
          continue;
        }
        expect([name, role, r.status]).toEqual([name, role, 200]);
        expect(r.json).toMatchObject({ id, status: decision === "approve" ? "executed" : "denied", decidedBy: operator, decisionReason: `${role} says so` });
        // The trail names who decided, in the decision's record and in the operator's change.
        const trail = await as(t.adminKey, "GET", `/api/audit?agentId=${agent.id}&decision=${decision === "approve" ? "approval_granted" : "approval_denied"}`);
        expect(trail.json.records.find((x: { reason: string }) => x.reason.includes(id))).toMatchObject({
          operator,
          reason: `approval ${id} ${decision === "approve" ? "approved" : "denied"} by ${operator}: ${role} says so`,
        });
        const change = await as(t.adminKey, "GET", `/api/audit?kind=admin&operator=${operator}&correlationId=${r.headers.get("x-correlation-id")}`);
        expect(change.json.records).toEqual([expect.objectContaining({ action: name, decision: "allow", status: 200 })]);
      }
      // Without a credential, or with a wrong one: 401; the asking agent's own token: 403.
      const id = await held();
      expect((await as(undefined, "POST", `/api/approvals/${id}/${decision}`)).status).toBe(401);
      expect((await as("op_not-a-real-key-at-all-000000000000000000", "POST", `/api/approvals/${id}/${decision}`)).status).toBe(401);
      const byAgent = await as(token, "POST", `/api/approvals/${id}/${decision}`);
      expect([byAgent.status, byAgent.json.error.code]).toEqual([403, "operator_forbidden"]);
    }
    // An approver's console session decides too (with its CSRF token); without the token it is refused.
    const session = await http(`${t.url}/api/console/session`, { body: { key: keys.approver } });
    const cookie = (session.headers.get("set-cookie") ?? "").split(";")[0]!;
    const id = await held();
    const noCsrf = await http(`${t.url}/api/approvals/${id}/approve`, { method: "POST", headers: { cookie } });
    expect([noCsrf.status, noCsrf.json.error.code]).toEqual([403, "csrf_invalid"]);
    const viaSession = await http(`${t.url}/api/approvals/${id}/approve`, { method: "POST", headers: { cookie, "x-csrf-token": session.json.csrfToken } });
    expect([viaSession.status, viaSession.json.status, viaSession.json.decidedBy]).toEqual([200, "executed", "the-approver"]);
  });

  it("shows an operator's key once, stores only its hash, and lists operators without keys", async () => {
    const created = await as(t.adminKey, "POST", "/api/operators", { name: unique("op"), role: "approver" });
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    expect(created.json.key).toMatch(/^op_[A-Za-z0-9_-]{43}$/);
    const listed = await as(keys.viewer, "GET", "/api/operators");
    expect(listed.text).not.toContain(created.json.key);
    expect(listed.json.operators.find((o: { id: string }) => o.id === created.json.id)).toMatchObject({ role: "approver", status: "active" });
    const rows = await t.gateway.store.driver.all<Record<string, unknown>>(`SELECT * FROM operators`);
    expect(JSON.stringify(rows)).not.toContain(created.json.key);
  });

  it("refuses bad operator input with a stable code and names the field", async () => {
    const badRole = await as(t.adminKey, "POST", "/api/operators", { name: "x", role: "root" });
    expect([badRole.status, badRole.json.error.code]).toEqual([400, "invalid_request"]);
    const badName = await as(t.adminKey, "POST", "/api/operators", { name: "Has Spaces", role: "viewer" });
    expect([badName.status, badName.json.error.code, badName.json.error.details.field]).toEqual([400, "invalid_request", "name"]);
    const dup = await as(t.adminKey, "POST", "/api/operators", { name: "the-viewer", role: "viewer" });
    expect([dup.status, dup.json.error.code]).toEqual([409, "conflict"]);
    const missing = await as(t.adminKey, "POST", "/api/operators/op_nope/disable");
    expect([missing.status, missing.json.error.code]).toEqual([404, "operator_not_found"]);
  });

  it("a disabled operator's key stops at once and works again when enabled; a rotated key replaces the old one", async () => {
    const created = await as(t.adminKey, "POST", "/api/operators", { name: unique("op"), role: "viewer" });
    expect((await as(created.json.key, "GET", "/api/agents")).status).toBe(200);
    await as(t.adminKey, "POST", `/api/operators/${created.json.id}/disable`);
    expect((await as(created.json.key, "GET", "/api/agents")).status).toBe(401);
    await as(t.adminKey, "POST", `/api/operators/${created.json.id}/enable`);
    expect((await as(created.json.key, "GET", "/api/agents")).status).toBe(200);
    const rotated = await as(t.adminKey, "POST", `/api/operators/${created.json.id}/rotate`);
    expect(rotated.json.key).not.toBe(created.json.key);
    expect((await as(created.json.key, "GET", "/api/agents")).status).toBe(401);
    expect((await as(rotated.json.key, "GET", "/api/agents")).status).toBe(200);
  });

  it("the SDK's admin client and the CLI manage operators", async () => {
    const sdk = new AdminClient({ baseUrl: t.url, adminKey: t.adminKey });
    const created = await sdk.createOperator({ name: unique("sdk-op"), role: "approver" });
    expect((await sdk.listOperators()).find((o) => o.id === created.id)).toMatchObject({ role: "approver", status: "active" });
    expect((await sdk.disableOperator(created.id)).status).toBe("disabled");
    expect((await sdk.enableOperator(created.id)).status).toBe("active");
    const rotated = await sdk.rotateOperatorKey(created.id);
    // An operator key works in the SDK too, within its role.
    const asApprover = new AdminClient({ baseUrl: t.url, adminKey: rotated.key });
    expect(await asApprover.listOperators()).not.toHaveLength(0);
    await expect(asApprover.createOperator({ name: unique("nope"), role: "viewer" })).rejects.toMatchObject({ code: "operator_forbidden", status: 403 });
    const signedIn = await http(`${t.url}/api/console/session`, { body: { key: rotated.key } });
    const session = (signedIn.headers.get("set-cookie") ?? "").split(";")[0]!;
    const listed = (await sdk.listConsoleSessions()).find((s) => s.operator.id === created.id)!;
    expect(listed).toMatchObject({ current: false, handle: expect.stringMatching(/^[0-9a-f]{12}$/) });
    await sdk.endConsoleSession(listed.handle);
    expect((await http(`${t.url}/api/agents`, { headers: { cookie: session } })).status).toBe(401);
    const name = unique("cli-op");
    const cli = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "--url", t.url, "--admin-key", t.adminKey, "operator", "create", "--name", name, "--role", "viewer"],
      { cwd: ROOT },
    );
    const printed = JSON.parse(cli.stdout) as { name: string; role: string; key: string };
    expect([printed.name, printed.role]).toEqual([name, "viewer"]);
    expect((await as(printed.key, "GET", "/api/agents")).status).toBe(200);
  });

  it("records which operator made each admin change, and refused attempts too", async () => {
    const name = unique("audited");
    const made = await as(keys.admin, "POST", "/api/agents", { name, role: "researcher", publicKey: generateAgentKeyPair("EdDSA").publicKeyPem });
    const refused = await as(keys.viewer, "POST", `/api/agents/${made.json.id}/suspend`);
    expect(refused.status).toBe(403);
    const byAdmin = await as(t.adminKey, "GET", `/api/audit?correlationId=${made.headers.get("x-correlation-id")}`);
    expect(byAdmin.json.records).toEqual([
      expect.objectContaining({ operator: "the-admin", action: "POST /api/agents", decision: "allow", status: 201, tool: null }),
    ]);
    const byViewer = await as(t.adminKey, "GET", `/api/audit?kind=admin&operator=the-viewer&agentId=${made.json.id}`);
    expect(byViewer.json.records).toEqual([
      expect.objectContaining({ action: "POST /api/agents/:id/suspend", decision: "deny", reason: "operator_forbidden", status: 403 }),
    ]);
    const bootstrap = await as(t.adminKey, "POST", `/api/agents/${made.json.id}/suspend`);
    const record = await as(t.adminKey, "GET", `/api/audit?correlationId=${bootstrap.headers.get("x-correlation-id")}`);
    expect(record.json.records[0].operator).toBe("bootstrap-admin");
    // Agents' calls stay apart from operators' changes.
    const calls = await as(t.adminKey, "GET", "/api/audit?kind=call");
    expect(calls.json.records.every((r: { operator: string | null }) => r.operator === null)).toBe(true);
  });

  describe("console sessions", () => {
    const signIn = async (key: string, headers: Record<string, string> = {}) => {
      const r = await http(`${t.url}/api/console/session`, { body: { key }, headers });
      const cookie = r.headers.get("set-cookie") ?? "";
      return { r, cookie, session: cookie.split(";")[0]!, csrf: r.json?.csrfToken as string };
    };

    it("exchanges a key for an HttpOnly, SameSite=Strict cookie (Secure behind HTTPS) and a CSRF token", async () => {
      const { r, cookie, csrf } = await signIn(keys.approver);
      expect(r.status).toBe(200);
      expect(r.json.operator).toEqual({ id: expect.any(String), name: "the-approver", role: "approver" });
      expect(cookie).toMatch(/^4runr_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600$/);
      expect(r.text).not.toContain(keys.approver);
      expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect((await signIn(keys.viewer, { "x-forwarded-proto": "https" })).cookie).toMatch(/; Secure$/);
    });

    it("says who is signed in, nobody included, and why a session no longer counts", async () => {
      const none = await http(`${t.url}/api/console/session`);
      expect([none.status, none.json]).toEqual([200, { operator: null, csrfToken: null, expiresAt: null }]);
      const bogus = await http(`${t.url}/api/console/session`, { headers: { cookie: "4runr_console=bogus" } });
      expect(bogus.json).toEqual({ operator: null, csrfToken: null, expiresAt: null, reason: "admin_unauthorized" });
      const bearer = await as(keys.viewer, "GET", "/api/console/session");
      expect(bearer.json).toEqual({ operator: { id: expect.any(String), name: "the-viewer", role: "viewer" }, csrfToken: null, expiresAt: null });
    });

    it("refuses a wrong key, and audits the attempt", async () => {
      const { r, cookie } = await signIn("op_wrong-key-000000000000000000000000000000000");
      expect([r.status, r.json.error.code, cookie]).toEqual([401, "admin_unauthorized", ""]);
      const audit = await as(t.adminKey, "GET", `/api/audit?correlationId=${r.headers.get("x-correlation-id")}`);
      expect(audit.json.records).toEqual([expect.objectContaining({ action: "console sign-in", decision: "deny", status: 401 })]);
    });

    it("reads with the cookie alone, but every change needs the session's CSRF token", async () => {
      const { session, csrf } = await signIn(keys.admin);
      const read = await http(`${t.url}/api/console/session`, { headers: { cookie: session } });
      expect([read.status, read.json.operator.name, read.json.csrfToken]).toEqual([200, "the-admin", csrf]);
      const body = { name: unique("op"), role: "viewer" };
      const missing = await http(`${t.url}/api/operators`, { body, headers: { cookie: session } });
      expect([missing.status, missing.json.error.code]).toEqual([403, "csrf_invalid"]);
      const wrong = await http(`${t.url}/api/operators`, {
        body,
        headers: { cookie: session, "x-csrf-token": `${csrf.slice(0, -1)}${csrf.endsWith("A") ? "B" : "A"}` },
      });
      expect([wrong.status, wrong.json.error.code]).toEqual([403, "csrf_invalid"]);
      const right = await http(`${t.url}/api/operators`, { body, headers: { cookie: session, "x-csrf-token": csrf } });
      expect(right.status).toBe(201);
      // Nor does the right token sent from another origin.
      const elsewhere = await http(`${t.url}/api/operators`, {
        body: { name: unique("op"), role: "viewer" },
        headers: { cookie: session, "x-csrf-token": csrf, origin: "https://evil.example" },
      });
      expect([elsewhere.status, elsewhere.json.error.code]).toEqual([403, "csrf_invalid"]);
      const garbled = await http(`${t.url}/api/operators`, {
        body: { name: unique("op"), role: "viewer" },
        headers: { cookie: session, "x-csrf-token": csrf, origin: "not a url" },
      });
      expect(garbled.status).toBe(403);
      const sameOrigin = await http(`${t.url}/api/operators`, {
        body: { name: unique("op"), role: "viewer" },
        headers: { cookie: session, "x-csrf-token": csrf, origin: t.url },
      });
      expect(sameOrigin.status).toBe(201);
      // Another session's token does not do either.
      const other = await signIn(keys.admin);
      expect(
        (await http(`${t.url}/api/operators`, { body: { name: unique("op"), role: "viewer" }, headers: { cookie: session, "x-csrf-token": other.csrf } }))
          .status,
      ).toBe(403);
    });

    it("a viewer's session cannot change anything, even with its CSRF token", async () => {
      const { session, csrf } = await signIn(keys.viewer);
      const r = await http(`${t.url}/api/agents/${agentId}/suspend`, { method: "POST", headers: { cookie: session, "x-csrf-token": csrf } });
      expect([r.status, r.json.error.code]).toEqual([403, "operator_forbidden"]);
      expect((await http(`${t.url}/api/agents`, { headers: { cookie: session } })).status).toBe(200);
    });

    it("expires on the server after the idle timeout and after its lifetime", async () => {
      const idle = await signIn(keys.viewer);
      clock.advance(601_000);
      const r = await http(`${t.url}/api/agents`, { headers: { cookie: idle.session } });
      expect([r.status, r.json.error.code]).toEqual([401, "session_expired"]);
      // Kept alive by use, a session still ends at its absolute expiry.
      const busy = await signIn(keys.viewer);
      for (let i = 0; i < 6; i++) {
        clock.advance(590_000);
        expect((await http(`${t.url}/api/agents`, { headers: { cookie: busy.session } })).status).toBe(200);
      }
      clock.advance(590_000);
      const late = await http(`${t.url}/api/agents`, { headers: { cookie: busy.session } });
      expect([late.status, late.json.error.code]).toEqual([401, "session_expired"]);
    });

    it("signs out on the server: the cookie is cleared and the session no longer works", async () => {
      const { session, csrf } = await signIn(keys.viewer);
      const out = await http(`${t.url}/api/console/session`, { method: "DELETE", headers: { cookie: session, "x-csrf-token": csrf } });
      expect(out.status).toBe(204);
      expect(out.headers.get("set-cookie")).toMatch(/^4runr_console=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/);
      const after = await http(`${t.url}/api/agents`, { headers: { cookie: session } });
      expect([after.status, after.json.error.code]).toEqual([401, "admin_unauthorized"]);
    });

    it("a bootstrap admin session ends when the admin key changes", async () => {
      const { session } = await signIn(t.adminKey);
      const sessionId = session.split("=")[1]!;
      expect(await t.gateway.operators.resolveSession(sessionId)).toMatchObject({ operator: { name: "bootstrap-admin", role: "admin" } });
      const { OperatorService } = await import("../../src/operators/index.js");
      const restartedWithAnotherKey = new OperatorService({
        driver: t.gateway.store.driver,
        bootstrapAdminKey: "another-admin-key-0000000",
        now: clock.now,
        session: { ttlSeconds: 3600, idleSeconds: 600 },
      });
      expect(await restartedWithAnotherKey.resolveSession(sessionId)).toBeUndefined();
    });

    it("lists who is signed in (never a session id), and an admin can end someone's session", async () => {
      const mine = await signIn(keys.admin);
      const theirs = await signIn(keys.approver);
      const listed = await http(`${t.url}/api/operators/sessions`, { headers: { cookie: mine.session } });
      expect(listed.text).not.toContain(theirs.session.split("=")[1]!);
      const own = listed.json.sessions.filter((s: { current: boolean }) => s.current);
      expect(own).toEqual([
        expect.objectContaining({ operator: { id: expect.any(String), name: "the-admin" }, handle: expect.stringMatching(/^[0-9a-f]{12}$/) }),
      ]);
      const handle = createHash("sha256").update(theirs.session.split("=")[1]!).digest("hex").slice(0, 12);
      expect(listed.json.sessions.find((s: { handle: string }) => s.handle === handle)).toMatchObject({ operator: { name: "the-approver" }, current: false });
      const ended = await http(`${t.url}/api/operators/sessions/${handle}`, { method: "DELETE", headers: { cookie: mine.session, "x-csrf-token": mine.csrf } });
      expect(ended.status).toBe(204);
      expect((await http(`${t.url}/api/agents`, { headers: { cookie: theirs.session } })).status).toBe(401);
      const again = await http(`${t.url}/api/operators/sessions/${handle}`, { method: "DELETE", headers: { cookie: mine.session, "x-csrf-token": mine.csrf } });
      expect([again.status, again.json.error.code]).toEqual([404, "not_found"]);
      const bad = await http(`${t.url}/api/operators/sessions/not-a-handle`, {
        method: "DELETE",
        headers: { cookie: mine.session, "x-csrf-token": mine.csrf },
      });
      expect([bad.status, bad.json.error.code]).toEqual([400, "invalid_request"]);
    });

    it("disabling an operator ends its sessions", async () => {
      const created = await as(t.adminKey, "POST", "/api/operators", { name: unique("op"), role: "viewer" });
      const { session } = await signIn(created.json.key);
      expect((await http(`${t.url}/api/agents`, { headers: { cookie: session } })).status).toBe(200);
      await as(t.adminKey, "POST", `/api/operators/${created.json.id}/disable`);
      expect((await http(`${t.url}/api/agents`, { headers: { cookie: session } })).status).toBe(401);
    });

    it("refuses sign-in from an address after ten wrong keys, right key included, until the window passes", async () => {
      expect((await signIn(keys.viewer)).r.status).toBe(200); // starts from a clean slate whatever ran before
      for (let i = 0; i < 9; i++) expect((await signIn(`op_wrong-${i}`)).r.status).toBe(401);
      // A success before the limit forgets the failures.
      expect((await signIn(keys.viewer)).r.status).toBe(200);
      for (let i = 0; i < 10; i++) expect((await signIn(`op_wrong-${i}`)).r.status).toBe(401);
      const blocked = await signIn(keys.viewer);
      expect([blocked.r.status, blocked.r.json.error.code, blocked.cookie]).toEqual([429, "rate_limited", ""]);
      expect(Number(blocked.r.headers.get("retry-after"))).toBeGreaterThan(0);
      clock.advance(5 * 60_000);
      expect((await signIn(keys.viewer)).r.status).toBe(200);
    });

    it("takes a key only as JSON, so a cross-site form cannot sign anyone in", async () => {
      const form = await http(`${t.url}/api/console/session`, {
        method: "POST",
        rawBody: `key=${keys.admin}`,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expect([form.status, form.json.error.code, form.headers.get("set-cookie")]).toEqual([415, "unsupported_media_type", null]);
      const plain = await http(`${t.url}/api/console/session`, {
        method: "POST",
        rawBody: JSON.stringify({ key: keys.admin }),
        headers: { "content-type": "text/plain" },
      });
      expect([plain.status, plain.json.error.code, plain.headers.get("set-cookie")]).toEqual([400, "invalid_request", null]);
    });

    it("a bearer key wins over a cookie, and a wrong bearer is not rescued by a valid cookie", async () => {
      const { session } = await signIn(keys.admin);
      const r = await http(`${t.url}/api/agents`, { headers: { cookie: session, authorization: "Bearer op_wrong" } });
      expect(r.status).toBe(401);
    });
  });

  describe("console assets", () => {
    let assets: TestGateway;
    let dir: string;
    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-console-assets-"));
      fs.mkdirSync(path.join(dir, "assets"));
      fs.writeFileSync(path.join(dir, "index.html"), "<!doctype html><title>console</title>");
      fs.writeFileSync(path.join(dir, "assets", "app-1234.js"), "export {};");
      fs.writeFileSync(path.join(path.dirname(dir), `${path.basename(dir)}-secret.txt`), "outside");
      assets = await startTestGateway({}, { consoleDir: dir });
    });
    afterAll(async () => {
      await assets?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(path.join(path.dirname(dir), `${path.basename(dir)}-secret.txt`), { force: true });
    });

    it("serves the page and its hashed assets with strict headers, and never a file outside its folder", async () => {
      const redirect = await fetch(`${assets.url}/console`, { redirect: "manual" });
      expect([redirect.status, redirect.headers.get("location")]).toEqual([302, "/console/"]);
      const page = await http(`${assets.url}/console/`);
      expect([page.status, page.headers.get("content-type"), page.headers.get("cache-control")]).toEqual([200, "text/html; charset=utf-8", "no-cache"]);
      expect(page.headers.get("content-security-policy")).toContain("default-src 'none'; script-src 'self'");
      expect(page.headers.get("x-frame-options")).toBe("DENY");
      const script = await http(`${assets.url}/console/assets/app-1234.js`);
      expect([script.headers.get("content-type"), script.headers.get("cache-control")]).toEqual([
        "text/javascript; charset=utf-8",
        "public, max-age=31536000, immutable",
      ]);
      // Any console address is the page (hash routes and reloads), including attempts to climb out.
      // (fetch resolves a literal or %2e-encoded ../ before sending; an encoded slash reaches the gateway.)
      for (const sneaky of [
        `..%2f${path.basename(dir)}-secret.txt`,
        `%2e%2e%2f${path.basename(dir)}-secret.txt`,
        "assets%2f..%2f..%2f..%2fetc%2fpasswd",
        "agents/123",
      ]) {
        const r = await http(`${assets.url}/console/${sneaky}`);
        expect([sneaky, r.status, r.text]).toEqual([sneaky, 200, "<!doctype html><title>console</title>"]);
      }
    });

    it("says how to build the console when it is missing", async () => {
      fs.rmSync(path.join(dir, "index.html"));
      const r = await http(`${assets.url}/console/`);
      expect([r.status, r.json.error.code, r.json.error.message]).toEqual([404, "not_found", "the console is not built: run `npm run build`"]);
    });
  });
});
