import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/client/index.js";
import { GatewayClientError } from "../../src/client/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { canRunOwnPostgres, ownPostgres, type OwnPostgres } from "../helpers/own-services.js";

const runnable = canRunOwnPostgres() || Boolean(process.env.CI);
if (!runnable) process.stderr.write("\n!!! PostgreSQL server binaries not found: SKIPPING the database-outage test (required in CI)\n\n");

describe.skipIf(!runnable)("PostgreSQL goes down under a running gateway", () => {
  let pg: OwnPostgres;
  let t: TestGateway;
  let client: AgentClient;
  const correlationIds: string[] = [];

  beforeAll(async () => {
    pg = await ownPostgres();
    // Serving through a database outage is AUDIT_FAILURE_MODE=open (counted); the default, closed,
    // refuses calls whose audit record cannot be written (test/audit/outage.test.ts).
    t = await startTestGateway({ DATABASE_URL: pg.url, DATABASE_SCHEMA: "outage_test", AUDIT_FAILURE_MODE: "open" });
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t, { scopes: ["serpapi:search"] }));
    await client.call("serpapi", "search", { q: "warm up" });
  }, 60_000);
  afterAll(async () => {
    await t.close();
    await pg.destroy();
  });

  it("keeps serving known agents from memory (audit open mode), refuses admin writes with 503, reports degraded", async () => {
    await pg.stop();
    for (let i = 0; i < 5; i++) {
      const r = await client.call<any>("serpapi", "search", { q: `during outage ${i}` });
      expect(r.data.search_metadata.status).toBe("Success");
      correlationIds.push(r.meta.correlationId);
    }
    const write = await t.admin.createAgent({ name: "during-outage", role: "researcher" }).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(GatewayClientError);
    expect((write as GatewayClientError).status).toBe(503);
    expect((write as GatewayClientError).code).toBe("service_unavailable");
    expect((write as GatewayClientError).retryAfterSeconds).toBeGreaterThan(0);
    const ready = await http(`${t.url}/ready`);
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: "degraded", checks: { store: { status: "down" } } });
    await t.gateway.audit.flush().catch(() => undefined); // fails: kept in the buffer
  });

  it("writes the buffered audit records once the database is back", async () => {
    await pg.start();
    let found: string[] = [];
    for (let i = 0; i < 50 && found.length < correlationIds.length; i++) {
      await t.gateway.audit.flush().catch(() => undefined);
      const r = await http(`${t.url}/api/audit?limit=1000`, { headers: { authorization: `Bearer ${t.adminKey}` } });
      if (r.status === 200) found = r.json.records.map((x: { correlationId: string }) => x.correlationId).filter((c: string) => correlationIds.includes(c));
      else await new Promise((res) => setTimeout(res, 200));
    }
    expect(found.sort()).toEqual([...correlationIds].sort());
    expect((await http(`${t.url}/ready`)).json.status).toBe("ready");
    expect((await t.admin.createAgent({ name: "after-outage", role: "researcher" })).status).toBe("active");
  });
});
