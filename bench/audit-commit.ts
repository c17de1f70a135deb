/**
 * The durable audit's own latency, without HTTP: `npm run bench:audit -- --commit-only` runs this.
 * One process, one embedded store, records handed to `AuditLog.record` at a fixed rate (as the road
 * would) with each SQLite writer (`thread`: worker thread, fsync per commit; `inline`: on the event
 * loop, no fsync), round-robin. Prints record→durable p50/p99 and the event loop's delay p99/max
 * (what other requests would wait) for each.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { AuditLog, deriveAuditKeys } from "../src/audit/index.js";
import { openStore } from "../src/store/index.js";
import { percentiles } from "./harness/report/compute.js";

export async function commitBench(o: { rps: number; seconds: number; rounds: number }) {
  const keys = deriveAuditKeys(randomBytes(32));
  const writers = ["thread", "inline"] as const;
  const all = new Map<string, number[]>(writers.map((w) => [w, []]));
  for (let round = 1; round <= o.rounds; round++) {
    for (const writer of writers) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-audit-commit-"));
      const store = await openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir });
      const log = new AuditLog({ writer: store.openAuditWriter({ sqlite: writer }), now: Date.now, chainId: `bench-${writer}`, keys });
      await log.record(entry(-1)); // starts the worker thread
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const latencies: number[] = [];
      const pending: Promise<unknown>[] = [];
      const total = o.rps * o.seconds;
      const start = performance.now();
      let sent = 0;
      await new Promise<void>((done) => {
        const tick = () => {
          while (sent < total && start + (sent * 1000) / o.rps <= performance.now()) {
            const t0 = performance.now();
            pending.push(log.record(entry(sent++)).then(() => latencies.push(performance.now() - t0)));
          }
          if (sent < total) setTimeout(tick, 0);
          else done();
        };
        tick();
      });
      await Promise.all(pending);
      loop.disable();
      await log.close();
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      all.get(writer)!.push(...latencies);
      const p = percentiles(latencies);
      console.log(
        `round ${round} ${writer.padEnd(7)} record→durable p50 ${p.p50.toFixed(3)} ms  p99 ${p.p99.toFixed(3)} ms  max ${p.max.toFixed(3)} ms   event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms  max ${(loop.max / 1e6).toFixed(2)} ms`,
      );
    }
  }
  for (const [writer, latencies] of all) {
    const p = percentiles(latencies);
    console.log(`${writer.padEnd(7)} all rounds: ${p.count} records, record→durable p50 ${p.p50.toFixed(3)} ms, p99 ${p.p99.toFixed(3)} ms`);
  }
}

const entry = (i: number) => ({
  correlationId: `bench-${i}`,
  agentId: "agent-bench",
  tool: "serpapi",
  action: "search",
  decision: "allow" as const,
  reason: null,
  status: 200,
  latencyMs: 1.234,
  upstreamMs: 0.5,
  cache: "miss",
  attempts: 1,
  paramsHash: "abcdefghijklmnopqrstuv",
});
