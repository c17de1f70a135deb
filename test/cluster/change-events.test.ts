import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../src/cluster/changes.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";
import { startUpstreamMcp } from "../helpers/upstream-mcp.js";

/**
 * Every route that can change state, with what it publishes, or why it publishes nothing. A route
 * added without an entry here fails the first test; an entry whose request changes state without
 * its event fails the second. Nothing about propagation is inferred from URLs any more.
 */
const MUTATING_ROUTES: Record<string, { publishes: ChangeEvent["type"] } | { publishesNothing: string }> = {
  "POST /api/agents": { publishes: "agent_created" },
  "POST /api/agents/:id/suspend": { publishes: "agent_status_changed" },
  "POST /api/agents/:id/activate": { publishes: "agent_status_changed" },
  "POST /api/agents/:id/revoke-tokens": { publishes: "tokens_revoked" },
  "POST /api/tokens/:tokenId/revoke": { publishes: "tokens_revoked" },
  "POST /api/admin/keys/rotate": { publishes: "signing_key_rotated" },
  "POST /api/credentials": { publishes: "credential_activated" },
  "POST /api/credentials/:tool/versions/:version/activate": { publishes: "credential_activated" },
  "POST /api/policies": { publishes: "policy_changed" },
  "PUT /api/policies/:id": { publishes: "policy_changed" },
  "PATCH /api/policies/:id": { publishes: "policy_changed" },
  "DELETE /api/policies/:id": { publishes: "policy_changed" },
  "POST /api/tools": { publishes: "tool_defined" },
  "DELETE /api/tools/:name": { publishes: "tool_removed" },
  "POST /api/mcp-servers": { publishes: "tool_defined" },
  "POST /api/mcp-servers/:name/refresh": { publishes: "tool_defined" },
  "DELETE /api/mcp-servers/:name": { publishes: "tool_removed" },
  "POST /oauth/token": { publishesNothing: "issuing a token (OAuth) adds a registry row other instances read the first time they see the token" },
  "POST /mcp": { publishesNothing: "an agent's MCP request: its tool calls run the road like POST /api/proxy" },
  "DELETE /mcp": { publishesNothing: "stateless MCP: there is no session to end (405)" },
  "POST /api/policies/explain": { publishesNothing: "a dry run: evaluates without counting or storing anything" },
  "POST /api/tokens": { publishesNothing: "issuing a token adds a registry row other instances read the first time they see the token" },
  "POST /api/proxy": { publishesNothing: "an agent's call: shared counters live in Redis, the audit in the store" },
  "POST /api/jobs": { publishesNothing: "an agent's job: queued in the store, where every instance's worker claims it" },
  "POST /v1/chat/completions": { publishesNothing: "an agent's model call through the OpenAI-compatible door: the same road as /api/proxy" },
  "POST /api/approvals/:id/approve": {
    publishesNothing: "a decision is one conditional UPDATE in the shared store; the approved call runs on the instance that won it",
  },
  "POST /api/approvals/:id/deny": { publishesNothing: "a decision is one conditional UPDATE in the shared store" },
  "PUT /api/admin/chaos": { publishesNothing: "chaos is per instance by design (docs/resilience.md)" },
  "PUT /api/admin/chaos/:tool": { publishesNothing: "chaos is per instance by design" },
  "DELETE /api/admin/chaos": { publishesNothing: "chaos is per instance by design" },
  "DELETE /api/admin/chaos/:tool": { publishesNothing: "chaos is per instance by design" },
  "POST /api/operators": { publishesNothing: "operators are read from the store on every request, never cached" },
  "POST /api/operators/:id/disable": { publishesNothing: "operators and their sessions are read from the store on every request" },
  "POST /api/operators/:id/enable": { publishesNothing: "operators are read from the store on every request" },
  "POST /api/operators/:id/rotate": { publishesNothing: "keys are looked up in the store on every request" },
  "DELETE /api/operators/sessions/:handle": { publishesNothing: "console sessions live in the store, which every instance reads" },
  "POST /api/console/session": { publishesNothing: "console sessions live in the store, which every instance reads" },
  "DELETE /api/console/session": { publishesNothing: "console sessions live in the store, which every instance reads" },
};

describe("change events are explicit: every mutating route is accounted for", () => {
  let t: TestGateway;
  const seen: ChangeEvent[] = [];
  const admin = () => ({ authorization: `Bearer ${t.adminKey}` });

  beforeAll(async () => {
    t = await startTestGateway({ FF_ASYNC: "on", SSRF_ALLOW: "127.0.0.1/32" });
    t.gateway.changes.subscribe((e) => seen.push(e));
  });
  afterAll(async () => {
    await t.close();
  });

  it("lists every mutating route of the gateway (a new one must say what it publishes)", () => {
    const mutating = t.gateway.routes.filter((r) => ["POST", "PUT", "PATCH", "DELETE"].includes(r.method)).map((r) => `${r.method} ${r.url}`);
    expect(mutating.length).toBeGreaterThan(10);
    for (const route of mutating) expect(MUTATING_ROUTES, `${route} is not in MUTATING_ROUTES`).toHaveProperty([route]);
    for (const route of Object.keys(MUTATING_ROUTES)) expect(mutating, `${route} no longer exists`).toContain(route);
  });

  it("each state-changing admin route publishes its typed event", async () => {
    const exercised = new Set<string>();
    /** Sends one request and checks that exactly the route's declared event type was published during it. */
    const expectEvent = async (route: string, path: string, init: { method?: string; body?: unknown } = {}) => {
      const entry = MUTATING_ROUTES[route]!;
      expect("publishes" in entry, route).toBe(true);
      const before = seen.length;
      const r = await http(`${t.url}${path}`, {
        method: init.method ?? route.split(" ")[0]!,
        headers: admin(),
        ...(init.body === undefined ? {} : { body: init.body }),
      });
      expect(r.status, `${route}: ${r.text}`).toBeLessThan(300);
      const published = seen.slice(before).map((e) => e.type);
      expect(published, route).toContain((entry as { publishes: string }).publishes);
      exercised.add(route);
      return r.json;
    };

    const agent = await expectEvent("POST /api/agents", "/api/agents", { body: { name: `events-${process.pid}`, role: "assistant" } });
    const agentId = agent.agent?.id ?? agent.id;
    await expectEvent("POST /api/agents/:id/suspend", `/api/agents/${agentId}/suspend`);
    await expectEvent("POST /api/agents/:id/activate", `/api/agents/${agentId}/activate`);

    const { client, agent: other } = await newAgent(t);
    const issued = await client.issueToken();
    await expectEvent("POST /api/tokens/:tokenId/revoke", `/api/tokens/${issued.tokenId}/revoke`);
    await client.issueToken();
    await expectEvent("POST /api/agents/:id/revoke-tokens", `/api/agents/${other.id}/revoke-tokens`);
    await expectEvent("POST /api/admin/keys/rotate", "/api/admin/keys/rotate");

    await expectEvent("POST /api/credentials", "/api/credentials", { body: { tool: "serpapi", secret: "serp-events-0001" } });
    await http(`${t.url}/api/credentials`, { headers: admin(), body: { tool: "serpapi", secret: "serp-events-0002", activate: false } });
    expect(seen.at(-1)).toMatchObject({ type: "credential_stored", tool: "serpapi", version: 2 });
    await expectEvent("POST /api/credentials/:tool/versions/:version/activate", "/api/credentials/serpapi/versions/2/activate");

    const doc = { name: "events-policy", subject: { role: "assistant" }, rules: [{ effect: "allow", scopes: ["serpapi:search"] }] };
    const policy = await expectEvent("POST /api/policies", "/api/policies", { body: doc });
    await expectEvent("PUT /api/policies/:id", `/api/policies/${policy.id}`, { body: { ...doc, description: "replaced" } });
    await expectEvent("PATCH /api/policies/:id", `/api/policies/${policy.id}`, { body: { description: "patched" } });
    await expectEvent("DELETE /api/policies/:id", `/api/policies/${policy.id}`);

    await expectEvent("POST /api/tools", "/api/tools", {
      body: { name: "evt", baseUrl: "http://127.0.0.1:9", actions: { get: { method: "GET", path: "/" } } },
    });
    await expectEvent("DELETE /api/tools/:name", "/api/tools/evt");

    const upstream = await startUpstreamMcp({
      name: "evt-mcp",
      tools: (server) => server.registerTool("ping", { description: "pong" }, async () => ({ content: [{ type: "text", text: "pong" }] })),
    });
    try {
      await expectEvent("POST /api/mcp-servers", "/api/mcp-servers", { body: { name: "evt-mcp", url: upstream.url, auth: { in: "none" } } });
      await expectEvent("POST /api/mcp-servers/:name/refresh", "/api/mcp-servers/evt-mcp/refresh");
      await expectEvent("DELETE /api/mcp-servers/:name", "/api/mcp-servers/evt-mcp");
    } finally {
      await upstream.close();
    }

    const declared = Object.entries(MUTATING_ROUTES)
      .filter(([, e]) => "publishes" in e)
      .map(([route]) => route);
    expect([...exercised].sort()).toEqual(declared.sort());
  });

  it("a refused change publishes nothing", async () => {
    const before = seen.length;
    expect((await http(`${t.url}/api/agents/nope/suspend`, { method: "POST", headers: admin() })).status).toBe(404);
    expect((await http(`${t.url}/api/policies`, { headers: admin(), body: { name: "bad" } })).status).toBe(400);
    expect((await http(`${t.url}/api/tools/none`, { method: "DELETE", headers: admin() })).status).toBe(404);
    expect((await http(`${t.url}/api/mcp-servers/none`, { method: "DELETE", headers: admin() })).status).toBe(404);
    expect((await http(`${t.url}/api/mcp-servers`, { headers: admin(), body: { name: "Bad Name", url: "http://127.0.0.1:9/mcp" } })).status).toBe(400);
    expect(seen.length).toBe(before);
  });
});
