/**
 * One instance vs two, same total load: `npm run bench:scale [-- --rps 200 --seconds 20]`.
 * Both configurations use PostgreSQL (own schema) and Redis (own prefix) as in production; with two
 * instances the generator splits the load evenly. Instances are pinned to separate cores when
 * `taskset` exists. Prints achieved RPS and p50/p99 end-to-end latency and gateway overhead for each.
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runLoad } from "./harness/loadgen.js";
import { startGatewayProcess, startTsProcess, type ChildService } from "./harness/processes.js";
import { percentiles } from "./harness/report/compute.js";
import { mixedTraffic, rng, setUpFleet } from "./harness/traffic.js";

const { values } = parseArgs({ options: { rps: { type: "string", default: "200" }, seconds: { type: "string", default: "20" } } });
const rps = Number(values.rps);
const seconds = Number(values.seconds);
const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const pin = spawnSync("taskset", ["-c", "0", "true"]).status === 0 && os.cpus().length >= 2;
const started: ChildService[] = [];

async function configuration(instances: number) {
  const schema = `bench_scale_${randomBytes(4).toString("hex")}`;
  const shared = {
    DATABASE_URL: databaseUrl,
    DATABASE_SCHEMA: schema,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: `bench:${schema}:`,
    GATEWAY_ADMIN_KEY: `bench-${randomBytes(16).toString("hex")}`,
    GATEWAY_MASTER_KEY: randomBytes(32).toString("base64"),
    UPSTREAM_MODE: "live",
    SERPAPI_BASE_URL: mock.url,
    OPENAI_BASE_URL: mock.url,
    GMAIL_BASE_URL: mock.url,
    SSRF_ALLOW: "127.0.0.1/32",
    POLICY_DEFAULTS: "off",
  };
  const gateways: ChildService[] = [];
  for (let i = 0; i < instances; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-scale-"));
    const g = await startGatewayProcess({ ...shared, DATA_DIR: dir }, 30_000, pin ? i % 2 : undefined);
    started.push(g);
    gateways.push(g);
  }
  const fleet = await setUpFleet({
    gatewayUrl: gateways[0]!.url,
    adminKey: shared.GATEWAY_ADMIN_KEY,
    mockUrl: mock.url,
    agents: 8,
    runId: randomBytes(3).toString("hex"),
  });
  // Warm each instance's caches of agents and keys, then measure.
  const stage = (r: number, s: number) => [{ durationS: s, fromRps: r, toRps: r }];
  await Promise.all(gateways.map((g) => runLoad({ target: g.url, stages: stage(20, 2), next: mixedTraffic(fleet, rng(1), { probes: false }) })));
  const runs = await Promise.all(
    gateways.map((g, i) => runLoad({ target: g.url, stages: stage(rps / instances, seconds), next: mixedTraffic(fleet, rng(10 + i), { probes: false }) })),
  );
  const samples = runs.flatMap((r) => r.samples);
  const ok = samples.filter((s) => s.status >= 200 && s.status < 300);
  const e2e = percentiles(ok.map((s) => s.e2eMs));
  const overhead = percentiles(ok.filter((s) => s.overheadMs !== undefined).map((s) => s.overheadMs!));
  for (const g of gateways) await g.stop();
  return {
    instances,
    achievedRps: samples.length / seconds,
    success: ok.length / Math.max(1, samples.length),
    e2e,
    overhead,
    lagP99: Math.max(...runs.map((r) => r.generatorLagP99Ms)),
  };
}

const mock = await startTsProcess("bench/harness/mock-server.ts", ["--latency", "20", "--jitter", "10"], {}, /listening on (http:\/\/[\d.:]+)/);
started.push(mock);
try {
  console.log(
    `scale-out benchmark: ${rps} RPS for ${seconds} s, PostgreSQL + Redis shared, mock upstream 20±10 ms, ${os.cpus().length} cores${pin ? ", instances pinned to cores" : ""}`,
  );
  for (const n of [1, 2]) {
    const r = await configuration(n);
    console.log(
      `${n} instance${n > 1 ? "s" : " "}: ${r.achievedRps.toFixed(1)} RPS achieved, success ${(r.success * 100).toFixed(2)}%, end-to-end p50 ${r.e2e.p50.toFixed(2)} ms p99 ${r.e2e.p99.toFixed(2)} ms, gateway overhead p50 ${r.overhead.p50.toFixed(2)} ms p99 ${r.overhead.p99.toFixed(2)} ms (generator lag p99 ${r.lagP99.toFixed(2)} ms)`,
    );
  }
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
}
