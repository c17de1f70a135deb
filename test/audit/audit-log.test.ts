import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog, deriveAuditKeys, paramsHmac, verifyAuditTrail, type AuditLogOptions, type AuditReceipt } from "../../src/audit/index.js";
import { GatewayError } from "../../src/errors/index.js";
import { canonicalJson } from "../../src/util/canonical-json.js";
import { openStore, type AuditWriter, type Store } from "../../src/store/index.js";

const keys = deriveAuditKeys(randomBytes(32));

const entry = (i: number) => ({
  at: 1_000 + i,
  correlationId: `c${i}`,
  agentId: "a",
  tool: "serpapi",
  action: "search",
  decision: "allow" as const,
  reason: null,
  status: 200,
  latencyMs: 1.25,
  upstreamMs: 0.5,
  cache: "miss",
  attempts: 1,
  paramsHash: "h",
});

const opened: { store: Store; log?: AuditLog }[] = [];
async function tempStore(): Promise<Store> {
  const store = await openStore({
    databaseUrl: undefined,
    databaseSchema: "public",
    databasePoolSize: 1,
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "4runr-audit-")),
  });
  opened.push({ store });
  return store;
}
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.log?.close().catch(() => undefined);
    await o.store.close();
  }
});

/** A writer that fails while `failing` is set, counting the writes it was asked for. */
function switchableWriter(inner: AuditWriter) {
  const state = { failing: false, writes: 0, batchSizes: [] as number[] };
  const writer: AuditWriter = {
    async write(records, head) {
      state.writes++;
      if (state.failing) throw new Error("database unreachable");
      state.batchSizes.push(records.length);
      return inner.write(records, head);
    },
    close: () => inner.close(),
  };
  return { writer, state };
}

function newLog(store: Store, writer: AuditWriter, extra: Partial<AuditLogOptions> = {}) {
  const log = new AuditLog({ writer, now: () => 5_000, chainId: `gw-${randomBytes(4).toString("hex")}`, keys, retryMinMs: 2, retryMaxMs: 10, ...extra });
  opened.find((o) => o.store === store)!.log = log;
  return log;
}

/** Polls `check` until it holds or the deadline passes (no sleeping for a fixed time). */
async function eventually(check: () => Promise<boolean> | boolean, deadlineMs = 10_000) {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met before the deadline");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("audit log: group commit", () => {
  it("resolves each record only once it is in the database, and writes many waiting records in one commit", async () => {
    const store = await tempStore();
    const { writer, state } = switchableWriter(store.openAuditWriter());
    const log = newLog(store, writer);
    const receipts = Array.from({ length: 300 }, (_, i) => log.record(entry(i)));
    // The first is durable when its promise resolves: it is in the table by then.
    await receipts[0];
    expect((await store.queryAudit({ limit: 1000 })).map((r) => r.correlationId)).toContain("c0");
    expect(await Promise.all(receipts)).toEqual(Array.from({ length: 300 }, () => ({ durable: true })));
    expect(await store.queryAudit({ limit: 1000 })).toHaveLength(300);
    // All 300 were queued in one turn of the event loop: one commit wrote them.
    expect(state.batchSizes).toEqual([300]);
    expect(log.pending).toBe(0);
    const report = await verifyAuditTrail(store, keys.chain);
    expect(report).toMatchObject({ ok: true, chains: 1, records: 300, broken: [] });
  });

  it("does not resolve before the writer has committed", async () => {
    const store = await tempStore();
    const inner = store.openAuditWriter();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const writer: AuditWriter = {
      write: async (records, head) => {
        await gate;
        await inner.write(records, head);
      },
      close: () => inner.close(),
    };
    const log = newLog(store, writer);
    let settled = false;
    const receipt = log.record(entry(1)).then((r) => ((settled = true), r));
    await eventually(() => log.pending === 1);
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    release();
    expect(await receipt).toEqual({ durable: true });
    expect(settled).toBe(true);
  });

  it("chains commits after one another: later batches link to the durable head", async () => {
    const store = await tempStore();
    const log = newLog(store, store.openAuditWriter());
    for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 7 }, (_, i) => log.record(entry(round * 10 + i))));
    const [chain] = await store.listAuditChains();
    expect(chain).toMatchObject({ chainId: log.chainId, headSeq: 35 });
    const records = await store.auditChainRecords(log.chainId, 0, 100);
    expect(records.map((r) => r.chainSeq)).toEqual(Array.from({ length: 35 }, (_, i) => i + 1));
    for (let i = 1; i < records.length; i++) expect(records[i]!.prevHash).toBe(records[i - 1]!.hash);
    expect((await verifyAuditTrail(store, keys.chain)).ok).toBe(true);
    // With another key the same chain does not verify: the links are MACs, not plain hashes.
    expect((await verifyAuditTrail(store, deriveAuditKeys(randomBytes(32)).chain)).ok).toBe(false);
  });
});

describe("audit log: when the store cannot be written", () => {
  it("closed mode: rejects waiting records with 503, refuses new calls, then writes everything once the store is back", async () => {
    const store = await tempStore();
    const { writer, state } = switchableWriter(store.openAuditWriter());
    const health: boolean[] = [];
    const unrecorded: string[] = [];
    const log = newLog(store, writer, { failureMode: "closed", events: { healthChanged: (h) => health.push(h), unrecorded: (o) => unrecorded.push(o) } });
    await log.record(entry(0));
    state.failing = true;
    const failed = await log.record(entry(1)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(GatewayError);
    expect(failed).toMatchObject({ code: "service_unavailable", status: 503, details: { reason: "audit_unavailable" } });
    expect(log.isHealthy).toBe(false);
    expect(() => log.assertWritable()).toThrow(GatewayError);
    // A record arriving while unhealthy is refused at once, and kept.
    await expect(log.record(entry(2))).rejects.toMatchObject({ status: 503 });
    expect(log.pending).toBe(2);
    expect(unrecorded).toEqual(["refused", "refused"]);
    state.failing = false;
    await eventually(() => log.isHealthy);
    expect(() => log.assertWritable()).not.toThrow();
    await log.flush();
    expect((await store.queryAudit({ limit: 10 })).map((r) => r.correlationId).sort()).toEqual(["c0", "c1", "c2"]);
    expect(health).toEqual([false, true]);
    expect(state.writes).toBeGreaterThan(2);
    // The retries kept the chain whole.
    expect(await verifyAuditTrail(store, keys.chain)).toMatchObject({ ok: true, records: 3 });
  });

  it("open mode: serves (resolves not durable) and counts, and writes the records later", async () => {
    const store = await tempStore();
    const { writer, state } = switchableWriter(store.openAuditWriter());
    const unrecorded: string[] = [];
    const failures: number[] = [];
    const log = newLog(store, writer, { failureMode: "open", events: { unrecorded: (o) => unrecorded.push(o), writeFailed: (_e, n) => failures.push(n) } });
    state.failing = true;
    const receipts: AuditReceipt[] = await Promise.all([log.record(entry(1)), log.record(entry(2))]);
    expect(receipts).toEqual([
      { durable: false, reason: "write_failed" },
      { durable: false, reason: "write_failed" },
    ]);
    expect(await log.record(entry(3))).toEqual({ durable: false, reason: "unavailable" });
    expect(() => log.assertWritable()).not.toThrow();
    expect(unrecorded).toEqual(["served", "served", "served"]);
    expect(failures[0]).toBe(2);
    state.failing = false;
    await eventually(() => log.isHealthy && log.pending === 0);
    expect(await store.queryAudit({ limit: 10 })).toHaveLength(3);
    expect(await log.record(entry(4))).toEqual({ durable: true });
  });

  it("bounds the retry buffer and counts every record it drops (never a silent drop)", async () => {
    const store = await tempStore();
    const { writer, state } = switchableWriter(store.openAuditWriter());
    let dropped = 0;
    const log = newLog(store, writer, {
      failureMode: "open",
      maxBuffered: 100,
      retryMinMs: 60_000,
      retryMaxMs: 60_000,
      events: { dropped: (n) => (dropped += n) },
    });
    state.failing = true;
    await log.record(entry(0));
    const receipts = await Promise.all(Array.from({ length: 149 }, (_, i) => log.record(entry(i + 1))));
    expect(log.pending).toBe(100);
    expect(dropped).toBe(50);
    expect(receipts.every((r) => !r.durable)).toBe(true);
    state.failing = false;
    await log.close();
    const kept = (await store.queryAudit({ limit: 1000 })).map((r) => r.correlationId);
    expect(kept).toHaveLength(100);
    expect(kept).toContain("c149");
    expect(kept).not.toContain("c0");
  });

  it("reports records it still cannot write at close", async () => {
    const store = await tempStore();
    const { writer, state } = switchableWriter(store.openAuditWriter());
    let lost = 0;
    const log = newLog(store, writer, { failureMode: "open", retryMinMs: 60_000, events: { lostAtClose: (n) => (lost += n) } });
    state.failing = true;
    await log.record(entry(0));
    await log.record(entry(1));
    await log.close();
    expect(lost).toBe(2);
  });
});

describe("audit params fingerprint", () => {
  it("is an HMAC with the audit key: not the plain SHA-256 of the parameters, and different under another key", () => {
    const params = { q: "pin 1234" };
    const plain = createHash("sha256").update(canonicalJson(params)).digest("base64url").slice(0, 22);
    const a = paramsHmac(keys.params, params);
    expect(a).toHaveLength(22);
    expect(a).not.toBe(plain);
    expect(paramsHmac(keys.params, { q: "pin 1234" })).toBe(a);
    expect(paramsHmac(deriveAuditKeys(randomBytes(32)).params, params)).not.toBe(a);
    // The same master key derives the same keys on every instance.
    const master = randomBytes(32);
    expect(deriveAuditKeys(master)).toEqual(deriveAuditKeys(Buffer.from(master)));
    expect(deriveAuditKeys(master).chain.equals(deriveAuditKeys(master).params)).toBe(false);
  });
});
