import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { Pool } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { AdminClient, AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { POSTGRES_URL, postgresAvailable, uniqueSchema } from "../helpers/services.js";

/**
 * The promise of the durable audit: every call answered 2xx has its record in the trail, even
 * when the gateway process is killed with SIGKILL in the middle of a load. A real `gateway serve`
 * process, a real kill -9, a restart on the same data.
 */
const pgUp = await postgresAvailable();
const schemas: string[] = [];
const dirs: string[] = [];
const running: GatewayProcess[] = [];

afterAll(async () => {
  await Promise.allSettled(running.map((g) => g.kill()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  if (schemas.length > 0) {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  }
});

interface Backend {
  name: string;
  runIf: boolean;
  env: () => Record<string, string>;
}

const backends: Backend[] = [
  { name: "embedded SQLite (inline audit writer, the default)", runIf: true, env: () => ({}) },
  { name: "embedded SQLite, audit writer thread", runIf: true, env: () => ({ AUDIT_SQLITE_WRITER: "thread" }) },
  { name: "embedded SQLite, audit writer thread without fsync", runIf: true, env: () => ({ AUDIT_SQLITE_WRITER: "thread", AUDIT_SQLITE_FSYNC: "off" }) },
  {
    name: "PostgreSQL",
    runIf: pgUp,
    env: () => {
      const schema = uniqueSchema("audit_crash");
      schemas.push(schema);
      return { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema };
    },
  },
];

async function allAuditCorrelationIds(url: string, adminKey: string): Promise<Set<string>> {
  const admin = new AdminClient({ baseUrl: url, adminKey });
  const ids = new Set<string>();
  let cursor: string | null = null;
  do {
    const page: { records: { correlationId: string }[]; nextCursor: string | null } = await admin.raw(
      "GET",
      `/api/audit?limit=1000${cursor === null ? "" : `&cursor=${cursor}`}`,
    );
    for (const r of page.records) ids.add(r.correlationId);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return ids;
}

describe.each(backends)("kill -9 under load ($name)", (backend) => {
  it.runIf(backend.runIf)(
    "every call answered 2xx before the kill is in the audit trail after a restart, and the chains verify",
    async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-audit-crash-"));
      dirs.push(dataDir);
      const adminKey = `admin-${randomBytes(16).toString("hex")}`;
      const env = { DATA_DIR: dataDir, GATEWAY_ADMIN_KEY: adminKey, POLICY_DEFAULTS: "off", FF_CACHE: "off", ...backend.env() };
      const gw = await startGatewayProcess(env, 60_000);
      running.push(gw);
      const admin = new AdminClient({ baseUrl: gw.url, adminKey });
      await admin.raw("POST", "/api/policies", { name: "allow-all", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
      const pair = generateAgentKeyPair("EdDSA");
      const agent = await admin.createAgent({ name: "crash-caller", role: "assistant", publicKey: pair.publicKeyPem });
      const token = await new AgentClient({ baseUrl: gw.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search"] }).token();

      // 24 callers in a closed loop; once 400 calls have been answered 2xx, SIGKILL with calls in flight.
      const answered: string[] = [];
      const sent: string[] = [];
      const pool = new Pool(gw.url, { connections: 24, pipelining: 1 });
      let stop = false;
      let killed: Promise<void> | undefined;
      const caller = async () => {
        while (!stop) {
          const id = `crash-${randomUUID()}`;
          sent.push(id);
          try {
            const r = await pool.request({
              path: "/api/proxy",
              method: "POST",
              headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "x-correlation-id": id },
              body: JSON.stringify({ tool: "serpapi", action: "search", params: { q: id } }),
            });
            // Answered: the status line has arrived, whatever happens to the body.
            if (r.statusCode >= 200 && r.statusCode < 300) answered.push(id);
            await r.body.text().catch(() => undefined);
          } catch {
            // The connection died with the process.
          }
          if (answered.length >= 400 && killed === undefined) killed = gw.kill().then(() => void (stop = true));
          // A gateway that answers nothing 2xx would never be killed: give up (and fail below) after many tries.
          if (sent.length > 50_000) stop = true;
        }
      };
      await Promise.all(Array.from({ length: 24 }, caller));
      await killed;
      await pool.destroy();
      expect(gw.child.signalCode).toBe("SIGKILL");
      expect(answered.length).toBeGreaterThanOrEqual(400);
      // Calls were still being sent when the process died, so some were cut off unanswered.
      expect(sent.length).toBeGreaterThan(answered.length);

      const again = await startGatewayProcess(env, 60_000);
      running.push(again);
      const inTrail = await allAuditCorrelationIds(again.url, adminKey);
      const missing = answered.filter((id) => !inTrail.has(id));
      expect(missing).toEqual([]);
      const verify = await new AdminClient({ baseUrl: again.url, adminKey }).raw<{ ok: boolean; records: number; broken: unknown[] }>(
        "GET",
        "/api/audit/verify",
      );
      expect(verify.broken).toEqual([]);
      expect(verify.ok).toBe(true);
      expect(verify.records).toBeGreaterThanOrEqual(answered.length);
      await again.stop();
    },
    120_000,
  );
});
