import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/index.js";
import { openStore, type Store } from "../../src/store/index.js";

const entry = (i: number) => ({
  at: 1_000 + i,
  correlationId: `c${i}`,
  agentId: "a",
  tool: "serpapi",
  action: "search",
  decision: "allow" as const,
  reason: null,
  status: 200,
  latencyMs: 1,
  upstreamMs: 0.5,
  cache: "miss",
  attempts: 1,
  paramsHash: "h",
});

const tempStore = () => openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "4runr-audit-")) });

describe("audit log", () => {
  it("writes everything recorded before a clean close", async () => {
    const store = await tempStore();
    const audit = new AuditLog({ store, now: () => 5, flushIntervalMs: 60_000 });
    audit.start();
    for (let i = 0; i < 2500; i++) audit.record(entry(i));
    await audit.close();
    expect(await store.queryAudit({ limit: 5000 })).toHaveLength(2500);
    await store.close();
  });

  it("keeps records when the store fails and writes them once it is back", async () => {
    const store = await tempStore();
    let failing = true;
    const flaky: Store = Object.create(store);
    flaky.insertAuditRecords = (records) => (failing ? Promise.reject(new Error("db down")) : store.insertAuditRecords(records));
    const errors: number[] = [];
    const audit = new AuditLog({ store: flaky, now: () => 5, onFlushError: (_e, n) => errors.push(n) });
    for (let i = 0; i < 10; i++) audit.record(entry(i));
    await audit.flush();
    expect(audit.pending).toBe(10);
    expect(errors).toEqual([10]);
    failing = false;
    await audit.flush();
    expect(audit.pending).toBe(0);
    expect(await store.queryAudit({ limit: 100 })).toHaveLength(10);
    await store.close();
  });

  it("bounds the buffer and counts what it had to drop", async () => {
    const store = await tempStore();
    let dropped = 0;
    const audit = new AuditLog({ store, now: () => 5, maxBuffered: 100, onDropped: (n) => (dropped += n) });
    for (let i = 0; i < 150; i++) audit.record(entry(i));
    expect(audit.pending).toBe(100);
    expect(dropped).toBe(50);
    await audit.close();
    const kept = await store.queryAudit({ limit: 1000 });
    expect(kept.map((r) => r.correlationId)).toContain("c149");
    expect(kept.map((r) => r.correlationId)).not.toContain("c0");
    await store.close();
  });
});

describe("audit log flushing after an idle flush", () => {
  it("an empty flush (the timer's first tick) never blocks later flushes", async () => {
    const written: unknown[] = [];
    const store = { insertAuditRecords: async (r: readonly unknown[]) => void written.push(...r) } as never;
    const log = new AuditLog({ store, now: () => 0 });
    await log.flush(); // nothing buffered yet
    log.record({ correlationId: "c", agentId: null, tool: "t", action: "a", decision: "allow", reason: null, status: 200, latencyMs: 1, upstreamMs: null, cache: null, attempts: null, paramsHash: "h" });
    await log.flush();
    expect(written).toHaveLength(1);
    expect(log.pending).toBe(0);
  });
});
