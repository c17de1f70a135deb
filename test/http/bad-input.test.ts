import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { POSTGRES_URL, postgresAvailable, uniqueSchema } from "../helpers/services.js";
import { newAgent } from "../helpers/agents.js";

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * Inputs SQLite tolerates but PostgreSQL refuses (NUL bytes, numbers beyond BIGINT, fractional
 * times) must be 4xx with a stable code on both stores, never a 500.
 */
// (Policy documents are stored as JSON text, NUL escaped, so they are not in this table.)
const badInputs: { name: string; method?: string; path: string; body?: unknown; code?: string }[] = [
  { name: "audit: NUL in agentId", path: "/api/audit?agentId=%00" },
  { name: "audit: NUL in tool", path: "/api/audit?tool=ab%00cd" },
  { name: "audit: from beyond BIGINT", path: "/api/audit?from=99999999999999999999" },
  { name: "audit: to beyond any date", path: "/api/audit?to=9007199254740993" },
  { name: "audit: negative-looking time", path: "/api/audit?from=-5" },
  { name: "audit: cursor with a huge time", path: `/api/audit?cursor=${cursorOf([1e300, "x"])}` },
  { name: "audit: cursor with a fractional time", path: `/api/audit?cursor=${cursorOf([1.5, "x"])}` },
  { name: "audit: cursor with NUL in its id", path: `/api/audit?cursor=${cursorOf([1000, "a\u0000b"])}` },
  { name: "audit: cursor that is not JSON", path: "/api/audit?cursor=%2F%2F%2F%2F" },
  { name: "audit: cursor of the wrong shape", path: `/api/audit?cursor=${cursorOf({ at: 1 })}` },
  { name: "agents: limit 0", path: "/api/agents?limit=0" },
  { name: "agents: offset beyond the pattern", path: "/api/agents?offset=99999999999999999999" },
  { name: "agents: NUL id", path: "/api/agents/%00", code: "invalid_request" },
  { name: "agents: NUL inside an id", path: "/api/agents/agt_%00x/suspend", method: "POST", body: {}, code: "invalid_request" },
  { name: "tokens: revoke NUL id", path: "/api/tokens/%00/revoke", method: "POST", body: {}, code: "invalid_request" },
  {
    name: "tokens: issue for a NUL agent id",
    path: "/api/tokens",
    method: "POST",
    body: { agentId: "a\u0000", assertion: "x.y.z", scopes: ["serpapi:search"] },
  },
  { name: "policies: NUL id", path: "/api/policies/%00", code: "invalid_request" },
  {
    name: "policies: explain for a NUL agent id",
    path: "/api/policies/explain",
    method: "POST",
    body: { agentId: "\u0000", tool: "serpapi", action: "search" },
  },
  { name: "credentials: NUL tool", path: "/api/credentials/%00", code: "invalid_request" },
  {
    name: "credentials: NUL in a description",
    path: "/api/credentials",
    method: "POST",
    body: { tool: "serpapi", secret: "s3cret-value", description: "a\u0000b" },
    code: "invalid_request",
  },
  { name: "credentials: version beyond INTEGER", path: "/api/credentials/serpapi/versions/999999999/activate", method: "POST", body: {} },
  { name: "jobs: NUL id", path: "/api/jobs/%00", code: "invalid_request" },
  {
    name: "tools: a generic tool with NUL in its name",
    path: "/api/tools",
    method: "POST",
    body: { name: "nul\u0000tool", baseUrl: "https://example.org", auth: { in: "none" }, actions: {} },
  },
  { name: "tools: delete NUL name", path: "/api/tools/%00", method: "DELETE", code: "invalid_request" },
];

async function startOn(store: "sqlite" | "postgres", schemas: string[]): Promise<TestGateway> {
  const env: Record<string, string> = { FF_ASYNC: "on" };
  if (store === "postgres") {
    const schema = uniqueSchema("badin");
    schemas.push(schema);
    Object.assign(env, { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema });
  }
  return startTestGateway(env);
}

const pgUp = await postgresAvailable();
const stores: ["sqlite" | "postgres"][] = pgUp ? [["sqlite"], ["postgres"]] : [["sqlite"]];

describe.each(stores)("bad input on the %s store", (store) => {
  const schemas: string[] = [];
  let t: TestGateway;
  beforeAll(async () => {
    t = await startOn(store, schemas);
    await t.admin.putCredential("serpapi", "serp-bad-input-0001");
  });
  afterAll(async () => {
    await t?.close();
    if (schemas.length > 0) {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await client.end();
    }
  });

  it.each(badInputs)("$name → 4xx with a stable code", async ({ method, path, body, code }) => {
    const r = await http(`${t.url}${path}`, {
      method: method ?? "GET",
      ...(body === undefined ? {} : { body }),
      headers: { authorization: `Bearer ${t.adminKey}` },
    });
    expect(r.status, r.text).toBeGreaterThanOrEqual(400);
    expect(r.status, r.text).toBeLessThan(500);
    expect(r.json.error.code).toMatch(/^[a-z_]+$/);
    if (code !== undefined) expect(r.json.error.code).toBe(code);
    expect(r.json.error.correlationId).toBe(r.headers.get("x-correlation-id"));
    expect(r.text).not.toMatch(/at .*\.[jt]s:\d+|invalid byte sequence|out of range|bigint/i);
  });

  it("refuses control characters in what an authenticated agent sends to be stored (intent, callback URL)", async () => {
    const { client, agent } = await newAgent(t, { role: "researcher", scopes: ["serpapi:search"] });
    const intent = await http(`${t.url}/api/tokens`, {
      body: { agentId: agent.id, assertion: await client.signAssertion(), scopes: ["serpapi:search"], intent: "research\u0000" },
    });
    expect(intent.status, intent.text).toBe(400);
    expect(intent.json.error.code).toBe("invalid_request");
    const job = await http(`${t.url}/api/jobs`, {
      body: { tool: "serpapi", action: "search", params: { q: "x" }, callbackUrl: "https://example.org/hook\u0000" },
      headers: { authorization: `Bearer ${await client.token()}` },
    });
    expect(job.status, job.text).toBe(400);
    expect(job.json.error.code).toBe("invalid_request");
  });

  it("still answers good queries afterwards", async () => {
    const r = await http(`${t.url}/api/audit?limit=5`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(r.status).toBe(200);
  });
});
