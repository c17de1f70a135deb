import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { AuditVerification } from "../../src/audit/index.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { ROOT } from "../helpers/promtool.js";
import { POSTGRES_URL, postgresAvailable, uniqueSchema } from "../helpers/services.js";

/**
 * Tamper evidence: someone with write access to the database edits or deletes audit rows (or the
 * chain head); `GET /api/audit/verify` and `gateway audit verify` name the first broken link.
 */
const pgUp = await postgresAvailable();
const schemas: string[] = [];
afterAll(async () => {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await client.end();
});

const backends = [
  { name: "embedded SQLite", runIf: true, env: (): Record<string, string> => ({}) },
  {
    name: "PostgreSQL",
    runIf: pgUp,
    env: (): Record<string, string> => {
      const schema = uniqueSchema("audit_tamper");
      schemas.push(schema);
      return { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema };
    },
  },
];

/**
 * A gateway whose chain holds `calls` records of agents' calls, answered and durable, after the
 * OPERATOR_SETUP_RECORDS records of the operator changes that set it up (credentials, policy, agent).
 */
const OPERATOR_SETUP_RECORDS = 5;
async function gatewayWithTrail(env: Record<string, string>, calls = 10): Promise<{ t: TestGateway; chainId: string }> {
  const t = await startTestGateway(env);
  await storeBuiltinCredentials(t);
  await allowEverything(t);
  const { client } = await newAgent(t, { scopes: ["serpapi:search", "openai:chat"] });
  for (let i = 0; i < calls - 1; i++) await client.call("serpapi", "search", { q: `tamper ${i}` });
  // One denied call too: refusals are chained like any record.
  await client.call("gmail_send", "send", { to: "a@example.com", subject: "s", body: "b" }).catch(() => undefined);
  return { t, chainId: t.gateway.instanceId };
}

async function verify(t: TestGateway): Promise<AuditVerification> {
  const r = await http(`${t.url}/api/audit/verify`, { headers: { authorization: `Bearer ${t.adminKey}` } });
  expect(r.status).toBe(200);
  return r.json as AuditVerification;
}

describe.each(backends)("audit tamper evidence ($name)", (backend) => {
  it.runIf(backend.runIf)("an intact trail verifies; verify is admin-only", async () => {
    const { t, chainId } = await gatewayWithTrail(backend.env());
    try {
      expect(await verify(t)).toEqual({ ok: true, chains: 1, records: 10 + OPERATOR_SETUP_RECORDS, unchained: 0, broken: [] });
      const [head] = await t.gateway.store.listAuditChains();
      expect(head).toMatchObject({ chainId, headSeq: 10 + OPERATOR_SETUP_RECORDS });
      expect((await http(`${t.url}/api/audit/verify`)).status).toBe(401);
    } finally {
      await t.close();
    }
  });

  it.runIf(backend.runIf)("an edited row is reported at its sequence number (API and CLI)", async () => {
    const { t, chainId } = await gatewayWithTrail(backend.env());
    try {
      const { changes } = await t.gateway.store.driver.run(`UPDATE audit_log SET status = 500, decision = 'error' WHERE chain_id = $1 AND chain_seq = 4`, [
        chainId,
      ]);
      expect(changes).toBe(1);
      const report = await verify(t);
      expect(report.ok).toBe(false);
      expect(report.broken).toEqual([{ chainId, seq: 4, recordId: expect.any(String), problem: "record_altered" }]);

      // Asynchronously: the gateway answering the CLI lives in this process.
      const cli = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          ["--import", "tsx", path.join(ROOT, "src/cli/main.ts"), "--url", t.url, "--admin-key", t.adminKey, "audit", "verify"],
          { cwd: ROOT, encoding: "utf8" },
          (_err, stdout) => resolve({ status: child.exitCode, stdout }),
        );
      });
      expect(cli.status).toBe(1);
      expect(cli.stdout).toContain("BROKEN: ");
      expect(cli.stdout).toContain(`chain ${chainId}: record_altered at seq 4`);
    } finally {
      await t.close();
    }
  });

  it.runIf(backend.runIf)("an edit that also rewrites the row's hash is still caught: the links are HMACs", async () => {
    const { t, chainId } = await gatewayWithTrail(backend.env());
    try {
      // A forger can recompute a plain hash but not the HMAC: whatever they write, seq 5 no longer matches.
      await t.gateway.store.driver.run(`UPDATE audit_log SET status = 500, hash = 'forged' WHERE chain_id = $1 AND chain_seq = 5`, [chainId]);
      expect((await verify(t)).broken).toEqual([{ chainId, seq: 5, recordId: expect.any(String), problem: "record_altered" }]);
      // Relinking the next record to the forged hash only moves the break: seq 5's fields do not match its hash.
      await t.gateway.store.driver.run(`UPDATE audit_log SET prev_hash = 'forged' WHERE chain_id = $1 AND chain_seq = 6`, [chainId]);
      expect((await verify(t)).broken).toEqual([{ chainId, seq: 5, recordId: expect.any(String), problem: "record_altered" }]);
    } finally {
      await t.close();
    }
  });

  it.runIf(backend.runIf)("a deleted row is reported as missing where the gap starts", async () => {
    const { t, chainId } = await gatewayWithTrail(backend.env());
    try {
      await t.gateway.store.driver.run(`DELETE FROM audit_log WHERE chain_id = $1 AND chain_seq = 6`, [chainId]);
      const report = await verify(t);
      expect(report.ok).toBe(false);
      expect(report.broken).toEqual([{ chainId, seq: 6, foundSeq: 7, problem: "records_missing" }]);
    } finally {
      await t.close();
    }
  });

  it.runIf(backend.runIf)("a cut-off tail is reported, and so is a head moved back to hide it", async () => {
    const { t, chainId } = await gatewayWithTrail(backend.env());
    try {
      await t.gateway.store.driver.run(`DELETE FROM audit_log WHERE chain_id = $1 AND chain_seq >= 9`, [chainId]);
      expect((await verify(t)).broken).toEqual([{ chainId, seq: 9, problem: "tail_missing" }]);
      // Moving the head back to the last remaining record needs the head's MAC, which needs the key.
      await t.gateway.store.driver.run(
        `UPDATE audit_chains SET head_seq = 8, head_hash = (SELECT hash FROM audit_log WHERE chain_id = $1 AND chain_seq = 8) WHERE chain_id = $1`,
        [chainId],
      );
      expect((await verify(t)).broken).toEqual([{ chainId, seq: 8, problem: "head_altered" }]);
      // Removing the head altogether is reported too.
      await t.gateway.store.driver.run(`DELETE FROM audit_chains WHERE chain_id = $1`, [chainId]);
      expect((await verify(t)).broken).toEqual([{ chainId, seq: 9, problem: "head_missing" }]);
    } finally {
      await t.close();
    }
  });
});

describe.runIf(pgUp)("several instances on one PostgreSQL schema", () => {
  it("each instance writes its own chain; every instance verifies all of them; a break in one names that chain only", async () => {
    const env = backends[1]!.env();
    const a = await gatewayWithTrail(env, 6);
    // Same schema and the same master key (as instances of one gateway share it).
    const masterKey = fs.readFileSync(path.join(a.t.dataDir, "master.key"), "utf8").trim();
    const b = await startTestGateway({ ...env, GATEWAY_MASTER_KEY: masterKey });
    try {
      const { client } = await newAgent(b, { scopes: ["serpapi:search"] });
      await Promise.all(Array.from({ length: 4 }, (_, i) => client.call("serpapi", "search", { q: `from b ${i}` })));
      const chains = (await b.gateway.store.listAuditChains()).map((h) => [h.chainId, h.headSeq]);
      // b's chain also holds the operator change that created its agent.
      expect(chains.sort()).toEqual(
        [
          [a.chainId, 6 + OPERATOR_SETUP_RECORDS],
          [b.gateway.instanceId, 4 + 1],
        ].sort(),
      );
      for (const t of [a.t, b]) expect(await verify(t)).toEqual({ ok: true, chains: 2, records: 10 + OPERATOR_SETUP_RECORDS + 1, unchained: 0, broken: [] });
      await b.gateway.store.driver.run(`UPDATE audit_log SET agent_id = 'someone-else' WHERE chain_id = $1 AND chain_seq = 2`, [b.gateway.instanceId]);
      expect((await verify(a.t)).broken).toEqual([{ chainId: b.gateway.instanceId, seq: 2, recordId: expect.any(String), problem: "record_altered" }]);
    } finally {
      await b.close();
      await a.t.close();
    }
  });
});
