import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { canRunOwnPostgres, ownPostgres, type OwnPostgres } from "../helpers/own-services.js";

/**
 * The audit trail cannot be written (a real PostgreSQL of the test's own, stopped under two running
 * gateways): AUDIT_FAILURE_MODE=closed refuses calls with 503, `open` serves them and counts each
 * one; never a silent drop. Both write what they kept once the database is back.
 */
const runnable = canRunOwnPostgres() || Boolean(process.env.CI);
if (!runnable) process.stderr.write("\n!!! PostgreSQL server binaries not found: SKIPPING the audit outage test (required in CI)\n\n");

async function metric(t: TestGateway, series: string): Promise<number> {
  const text = (await http(`${t.url}/metrics`)).text;
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no series ${series}`);
  return Number(line.slice(series.length + 1));
}

async function eventually(check: () => Promise<boolean>, deadlineMs = 30_000) {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met before the deadline");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!runnable)("the audit trail cannot be written (PostgreSQL down)", () => {
  let pg: OwnPostgres;
  let closed: { t: TestGateway; client: AgentClient };
  let open: { t: TestGateway; client: AgentClient };
  const servedDuringOutage: string[] = [];

  const gateway = async (schema: string, mode: "closed" | "open") => {
    const t = await startTestGateway({ DATABASE_URL: pg.url, DATABASE_SCHEMA: schema, AUDIT_FAILURE_MODE: mode, POLICY_DEFAULTS: "off" });
    await storeBuiltinCredentials(t);
    await allowEverything(t);
    const { client } = await newAgent(t, { scopes: ["serpapi:search"] });
    await client.call("serpapi", "search", { q: "warm up" });
    return { t, client };
  };

  beforeAll(async () => {
    pg = await ownPostgres();
    closed = await gateway("audit_closed", "closed");
    open = await gateway("audit_open", "open");
  }, 90_000);
  afterAll(async () => {
    await closed?.t.close();
    await open?.t.close();
    await pg?.destroy();
  });

  it("closed (the default): the call whose record fails, and every call after it, is answered 503; the failure is counted", async () => {
    expect(closed.t.gateway.config.auditFailureMode).toBe("closed");
    await pg.stop();
    for (let i = 0; i < 3; i++) {
      const err = await closed.client.call("serpapi", "search", { q: `refused ${i}` }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayClientError);
      expect(err).toMatchObject({ status: 503, code: "service_unavailable" });
      expect((err as GatewayClientError).retryAfterSeconds).toBeGreaterThan(0);
    }
    expect(await metric(closed.t, `gateway_audit_unrecorded_total{answer="refused"}`)).toBe(3);
    expect(await metric(closed.t, "gateway_audit_write_failures_total")).toBeGreaterThanOrEqual(1);
    expect(await metric(closed.t, "gateway_audit_healthy")).toBe(0);
    const ready = await http(`${closed.t.url}/ready`);
    expect(ready.json.checks.audit.status).toBe("down");
  });

  it("open: calls are served and each one without a durable record is counted", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await open.client.call<any>("serpapi", "search", { q: `served ${i}` });
      expect(r.data.search_metadata.status).toBe("Success");
      servedDuringOutage.push(r.meta.correlationId);
    }
    expect(await metric(open.t, `gateway_audit_unrecorded_total{answer="served"}`)).toBe(3);
    expect(await metric(open.t, "gateway_audit_write_failures_total")).toBeGreaterThanOrEqual(1);
    expect(await metric(open.t, "gateway_audit_buffered")).toBe(3);
  });

  it("once the database is back: closed serves again, open writes what it kept, and both chains verify", async () => {
    await pg.start();
    await eventually(async () => {
      const r = await closed.client.call("serpapi", "search", { q: "after the outage" }).then(
        () => true,
        () => false,
      );
      return r;
    });
    await eventually(async () => open.t.gateway.audit.pending === 0);
    const trail = await http(`${open.t.url}/api/audit?limit=100`, { headers: { authorization: `Bearer ${open.t.adminKey}` } });
    const ids = trail.json.records.map((r: { correlationId: string }) => r.correlationId);
    for (const id of servedDuringOutage) expect(ids).toContain(id);
    for (const g of [closed, open]) {
      const v = await http(`${g.t.url}/api/audit/verify`, { headers: { authorization: `Bearer ${g.t.adminKey}` } });
      expect(v.json).toMatchObject({ ok: true, broken: [] });
    }
    // The closed gateway's refused calls were kept and written too (what the road did, with its status).
    const closedTrail = await http(`${closed.t.url}/api/audit?limit=100`, { headers: { authorization: `Bearer ${closed.t.adminKey}` } });
    expect(closedTrail.json.records.length).toBeGreaterThanOrEqual(5);
    expect(await metric(closed.t, "gateway_audit_healthy")).toBe(1);
  }, 60_000);
});
