/**
 * The cost of the durable audit: `npm run bench:audit [-- --rps 500 --seconds 15 --rounds 2 --postgres --variants off,durable]`.
 * The same gateway (a process of its own, live mode against a mock upstream process with no added
 * latency) is run with four audit writers, `off`, `batched` (the old way: answered at once, written
 * every 250 ms, lost on a crash), `durable` (the gateway as shipped: answered after its group
 * commit; on SQLite inline, on the event loop) and `thread` (durable, SQLite commits from the writer
 * thread with an fsync: AUDIT_SQLITE_WRITER=thread), round-robin, each under an open-loop load at a
 * fixed rate. Latency is measured from each
 * request's scheduled send time, so a stall cannot hide behind a slow sender. Prints p50/p99 per
 * writer and the p99 the durable audit adds.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { Pool } from "undici";
import { AdminClient, AgentClient } from "../src/client/index.js";
import { generateAgentKeyPair } from "../src/identity/index.js";
import { startTsProcess, type ChildService } from "./harness/processes.js";
import { percentiles } from "./harness/report/compute.js";
import { commitBench } from "./audit-commit.js";

const { values } = parseArgs({
  options: {
    rps: { type: "string", default: "500" },
    seconds: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    variants: { type: "string", default: "off,batched,durable,thread" },
    postgres: { type: "boolean", default: false },
    "commit-only": { type: "boolean", default: false },
    "database-url": { type: "string", default: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test" },
  },
});
const rps = Number(values.rps);
const seconds = Number(values.seconds);
const warmupS = Number(values.warmup);
const rounds = Number(values.rounds);
const variants = values.variants.split(",") as ("off" | "batched" | "durable" | "thread")[];
const started: ChildService[] = [];
const schemas: string[] = [];

/** Open loop: request i is due at start + i/rps whether or not earlier ones have been answered. */
async function fixedRate(target: string, token: string, rate: number, durationS: number) {
  const pool = new Pool(target, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const intervalMs = 1000 / rate;
  const total = Math.round(rate * durationS);
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  let maxLagMs = 0;
  const inFlight: Promise<void>[] = [];
  const one = async (dueMs: number, n: number) => {
    try {
      const r = await pool.request({
        path: "/api/proxy",
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ tool: "serpapi", action: "search", params: { q: `audit bench ${n} ${randomBytes(4).toString("hex")}` } }),
      });
      await r.body.text();
      if (r.statusCode !== 200) errors++;
    } catch {
      errors++;
    }
    latencies.push(performance.now() - dueMs);
  };
  const startMs = performance.now() + 5;
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && startMs + sent * intervalMs <= now) {
        const due = startMs + sent * intervalMs;
        maxLagMs = Math.max(maxLagMs, now - due);
        inFlight.push(one(due, sent++));
      }
      if (sent < total) setTimeout(tick, 0);
      else done();
    };
    tick();
  });
  await Promise.all(inFlight);
  await pool.close();
  return { latencies, errors, maxLagMs };
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}
const metricValue = (text: string, series: string) =>
  Number(
    text
      .split("\n")
      .find((l) => l.startsWith(`${series} `))
      ?.split(" ")[1] ?? NaN,
  );

async function runVariant(variant: string, mockUrl: string) {
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-audit-bench-"));
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    GATEWAY_ADMIN_KEY: adminKey,
    UPSTREAM_MODE: "live",
    SERPAPI_BASE_URL: mockUrl,
    OPENAI_BASE_URL: mockUrl,
    GMAIL_BASE_URL: mockUrl,
    SSRF_ALLOW: "127.0.0.1/32",
    POLICY_DEFAULTS: "off",
    FF_CACHE: "off",
    LOG_LEVEL: "warn",
    PORT: "0",
    HOST: "127.0.0.1",
  };
  if (values.postgres) {
    const schema = `audit_bench_${process.pid}_${randomBytes(3).toString("hex")}`;
    schemas.push(schema);
    Object.assign(env, { DATABASE_URL: values["database-url"], DATABASE_SCHEMA: schema });
  }
  // `thread`: the durable audit with the embedded store's commits from the writer thread (AUDIT_SQLITE_WRITER=thread).
  if (variant === "thread") env.AUDIT_SQLITE_WRITER = "thread";
  const gateway = await startTsProcess("bench/audit-gateway.ts", [variant === "thread" ? "durable" : variant], env, /listening on (http:\/\/[\d.:]+)/, 60_000);
  started.push(gateway);
  try {
    const admin = new AdminClient({ baseUrl: gateway.url, adminKey });
    await admin.raw("POST", "/api/policies", { name: "bench-allow-all", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
    await admin.putCredential("serpapi", "bench-serpapi-key-0001");
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await admin.createAgent({ name: "audit-bench", role: "assistant", publicKey: pair.publicKeyPem });
    const token = await new AgentClient({
      baseUrl: gateway.url,
      agentId: agent.id,
      privateKey: pair.privateKeyPem,
      scopes: ["serpapi:search"],
      ttlSeconds: 3600,
    }).token();
    await fixedRate(gateway.url, token, rps, warmupS);
    const before = await metricsText(gateway.url);
    const result = await fixedRate(gateway.url, token, rps, seconds);
    const after = await metricsText(gateway.url);
    const commits = metricValue(after, "gateway_audit_commit_duration_seconds_count") - metricValue(before, "gateway_audit_commit_duration_seconds_count");
    const commitS = metricValue(after, "gateway_audit_commit_duration_seconds_sum") - metricValue(before, "gateway_audit_commit_duration_seconds_sum");
    const records = metricValue(after, "gateway_audit_commit_records_sum") - metricValue(before, "gateway_audit_commit_records_sum");
    return {
      ...result,
      commits,
      commitMeanMs: commits > 0 ? (commitS * 1000) / commits : NaN,
      recordsPerCommit: commits > 0 ? records / commits : NaN,
      lagP99: metricValue(after, "gateway_nodejs_eventloop_lag_p99_seconds") * 1000,
    };
  } finally {
    await gateway.stop();
    started.splice(started.indexOf(gateway), 1);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const fmt = (ms: number) => ms.toFixed(2).padStart(7);
if (values["commit-only"]) {
  console.log(
    `audit commit bench: AuditLog.record → durable at ${rps} records/s, ${seconds} s per run, ${rounds} round(s), embedded SQLite, ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  await commitBench({ rps, seconds, rounds });
  process.exit(0);
}
try {
  const mock = await startTsProcess("bench/harness/mock-server.ts", ["--latency", "0", "--jitter", "0"], {}, /listening on (http:\/\/[\d.:]+)/);
  started.push(mock);
  console.log(
    `audit bench: serpapi:search (uncached), open loop at ${rps} RPS, ${seconds} s per run after ${warmupS} s warm-up, ${rounds} round(s) of [${variants.join(", ")}], store ${values.postgres ? "PostgreSQL" : "embedded SQLite"}, ${os.cpus().length} cores, Node ${process.version}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  const all = new Map<string, number[]>(variants.map((v) => [v, []]));
  const errors = new Map<string, number>(variants.map((v) => [v, 0]));
  const perRound = new Map<string, { p50: number; p99: number }[]>(variants.map((v) => [v, []]));
  for (let round = 1; round <= rounds; round++) {
    // Each round starts with another variant, so a drift of the host over the run does not favour one.
    const order = variants.map((_, i) => variants[(i + round - 1) % variants.length]!);
    for (const variant of order) {
      const r = await runVariant(variant, mock.url);
      all.get(variant)!.push(...r.latencies);
      errors.set(variant, errors.get(variant)! + r.errors);
      const p = percentiles(r.latencies);
      perRound.get(variant)!.push({ p50: p.p50, p99: p.p99 });
      const commitInfo =
        variant === "durable" || variant === "thread"
          ? `   commits ${r.commits} (mean ${r.commitMeanMs.toFixed(3)} ms, ${r.recordsPerCommit.toFixed(2)} records each)`
          : "";
      console.log(
        `round ${round} ${variant.padEnd(8)} p50 ${fmt(p.p50)} ms  p99 ${fmt(p.p99)} ms  max ${fmt(p.max)} ms  errors ${r.errors}  sender lag max ${r.maxLagMs.toFixed(1)} ms${commitInfo}`,
      );
    }
  }
  console.log(
    `\nall rounds (load average now ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}):`,
  );
  const summary = new Map(variants.map((v) => [v, percentiles(all.get(v)!)]));
  for (const [v, p] of summary)
    console.log(`${v.padEnd(8)} requests ${String(p.count).padStart(6)}  p50 ${fmt(p.p50)} ms  p99 ${fmt(p.p99)} ms  errors ${errors.get(v)}`);
  for (const measured of ["durable", "thread"] as const) {
    const m = summary.get(measured);
    for (const base of ["off", "batched"] as const) {
      const b = summary.get(base);
      if (m && b) console.log(`${measured} vs ${base}: added p50 ${(m.p50 - b.p50).toFixed(2)} ms, added p99 ${(m.p99 - b.p99).toFixed(2)} ms`);
    }
  }
  // Paired by round: each round's variants ran back to back, so their difference is less exposed to
  // the host's swings between rounds than the pooled percentiles above.
  if (rounds > 1) {
    console.log(`\npaired by round (median over ${rounds} rounds, [min, max]):`);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
    for (const measured of ["durable", "thread"] as const) {
      for (const base of ["off", "batched"] as const) {
        const m = perRound.get(measured);
        const b = perRound.get(base);
        if (m === undefined || b === undefined) continue;
        const d99 = m.map((x, i) => x.p99 - b[i]!.p99);
        const d50 = m.map((x, i) => x.p50 - b[i]!.p50);
        console.log(
          `${measured} vs ${base}: added p50 ${median(d50).toFixed(2)} ms [${Math.min(...d50).toFixed(2)}, ${Math.max(...d50).toFixed(2)}], added p99 ${median(d99).toFixed(2)} ms [${Math.min(...d99).toFixed(2)}, ${Math.max(...d99).toFixed(2)}]`,
        );
      }
    }
  }
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
  if (schemas.length > 0) {
    const client = new pg.Client({ connectionString: values["database-url"] });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  }
}
