/**
 * The proof harness: `npm run bench -- --scenario <name> [--duration <scale>] [--target <url>] [--out <dir>]`.
 * Without --target it starts mock upstreams and a gateway (separate processes, 127.0.0.1 only), sets
 * up agents, credentials and policies, runs the scenario, compares against a bare reverse proxy over
 * the same upstream, writes the raw data and the report, and stops everything it started.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { runLoad, type Sample } from "./loadgen.js";
import { startTimeline } from "./observe.js";
import { ROOT, startGatewayProcess, startTsProcess, type ChildService } from "./processes.js";
import { SCENARIOS, scaledStages } from "./scenarios.js";
import type { Stage } from "./schedule.js";
import { cacheTraffic, mixedTraffic, rng, setUpFleet } from "./traffic.js";
import { DEFAULT_TARGETS, percentiles, type RunData } from "./report/compute.js";
import { writeRawData, writeReport } from "./report/run-dir.js";

const { values } = parseArgs({
  options: {
    scenario: { type: "string", default: "baseline" },
    duration: { type: "string", default: "1" },
    target: { type: "string" },
    "admin-key": { type: "string" },
    "mock-url": { type: "string" },
    out: { type: "string" },
    agents: { type: "string", default: "8" },
    "mock-latency": { type: "string", default: "20" },
    "mock-jitter": { type: "string", default: "10" },
    compare: { type: "boolean", default: true },
    "no-compare": { type: "boolean", default: false },
    seed: { type: "string", default: "42" },
    quiet: { type: "boolean", default: false },
    "max-rps": { type: "string" },
  },
  strict: true,
});

const scenario = SCENARIOS[values.scenario!];
if (scenario === undefined) {
  process.stderr.write(`unknown scenario "${values.scenario}"; known: ${Object.keys(SCENARIOS).join(", ")}\n`);
  process.exit(2);
}
const scale = Number(values.duration);
if (!(scale > 0 && scale <= 10)) {
  process.stderr.write("--duration is a scale factor between 0 and 10 (e.g. 0.05 for a quick run)\n");
  process.exit(2);
}
const runId = `${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}-${scenario.name}`;
const outDir = path.resolve(values.out ?? path.join(ROOT, "reports", runId));
const started: ChildService[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main() {
  const adminKey = values["admin-key"] ?? process.env.GATEWAY_ADMIN_KEY ?? `bench-${randomBytes(16).toString("hex")}`;
  let gatewayUrl = values.target;
  let mockUrl = values["mock-url"];
  const gatewayEnv: Record<string, string> = {};
  let dataDir: string | undefined;
  if (mockUrl === undefined) {
    const mock = await startTsProcess("bench/harness/mock-server.ts", ["--latency", values["mock-latency"]!, "--jitter", values["mock-jitter"]!], {}, /listening on (http:\/\/[\d.:]+)/);
    started.push(mock);
    mockUrl = mock.url;
  }
  if (gatewayUrl === undefined) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-bench-"));
    Object.assign(gatewayEnv, {
      DATA_DIR: dataDir,
      GATEWAY_ADMIN_KEY: adminKey,
      UPSTREAM_MODE: "live",
      SERPAPI_BASE_URL: mockUrl,
      OPENAI_BASE_URL: mockUrl,
      GMAIL_BASE_URL: mockUrl,
      SSRF_ALLOW: "127.0.0.1/32",
      POLICY_DEFAULTS: "off",
      UPSTREAM_TIMEOUT_MS: "2000",
      LOG_LEVEL: "warn",
      ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: `bench_${randomBytes(4).toString("hex")}` } : {}),
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, REDIS_PREFIX: `bench:${randomBytes(4).toString("hex")}:` } : {}),
    });
    const gateway = await startGatewayProcess(gatewayEnv);
    started.push(gateway);
    gatewayUrl = gateway.url;
  }
  log(`gateway ${gatewayUrl}, mock upstreams ${mockUrl}, report in ${outDir}`);
  const metricsText = async () => (await fetch(`${gatewayUrl}/metrics`)).text();
  // Before setup, so the agents, tokens and the one intentional revocation of the setup are in the deltas.
  const metricsBefore = await metricsText();
  const fleet = await setUpFleet({ gatewayUrl, adminKey, mockUrl, agents: Number(values.agents), runId: randomBytes(3).toString("hex") });
  const random = rng(Number(values.seed));
  const next = scenario!.traffic === "cache" ? cacheTraffic(fleet, random) : mixedTraffic(fleet, random);

  let runStart = performance.now();
  const timeline = startTimeline({ gatewayUrl, everyMs: Math.max(500, Math.min(5000, 1000 * scale * 2)), startedAt: () => runStart });
  let stages: Stage[];
  let samples: Sample[] = [];
  let lagP99 = 0;
  let lagMax = 0;
  let chaosWindowS: [number, number] | undefined;
  const startedAt = new Date().toISOString();

  if (scenario!.capacity) {
    // Step the rate up until overhead p99 or errors break the targets.
    const c = scenario!.capacity;
    stages = [];
    let offset = 0;
    const maxRps = values["max-rps"] === undefined ? c.maxRps : Number(values["max-rps"]);
    for (let rate = c.startRps; rate <= maxRps; rate = Math.round(rate * c.factor)) {
      const stepS = Math.max(3, c.stepS * scale);
      const step: Stage = { durationS: stepS, fromRps: rate, toRps: rate, label: `${rate} RPS` };
      const r = await runLoad({ target: gatewayUrl, stages: [step], next, secrets: fleet.secrets, progress: !values.quiet, label: `capacity ${rate}` });
      samples.push(...r.samples.map((s) => ({ ...s, t: s.t + offset })));
      stages.push(step);
      offset += stepS;
      lagP99 = Math.max(lagP99, r.generatorLagP99Ms);
      lagMax = Math.max(lagMax, r.generatorLagMaxMs);
      const calls = r.samples.filter((s) => s.expect === "allow");
      const errors = calls.filter((s) => s.status < 200 || s.status >= 300).length / Math.max(1, calls.length);
      const overheadP99 = percentiles(calls.filter((s) => s.overheadMs !== undefined).map((s) => s.overheadMs!)).p99;
      const achieved = r.samples.length / stepS;
      log(`capacity step ${rate} RPS: achieved ${achieved.toFixed(0)}, overhead p99 ${overheadP99.toFixed(2)} ms, errors ${(errors * 100).toFixed(2)}%`);
      if (errors > 0.005 || overheadP99 > DEFAULT_TARGETS.overheadP99Ms || achieved < rate * 0.9) break;
    }
  } else {
    stages = scaledStages(scenario!, scale);
    const hooks = [];
    if (scenario!.chaos) {
      const total = stages.reduce((s, st) => s + st.durationS, 0);
      chaosWindowS = [scenario!.chaos.from * total, scenario!.chaos.to * total];
      const admin = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" };
      hooks.push(
        { fraction: scenario!.chaos.from, run: async () => void (await fetch(`${gatewayUrl}/api/admin/chaos`, { method: "PUT", headers: admin, body: JSON.stringify(scenario!.chaos!.settings) })).text().then(() => log("chaos ON")) },
        { fraction: scenario!.chaos.to, run: async () => void (await fetch(`${gatewayUrl}/api/admin/chaos`, { method: "DELETE", headers: admin })).text().then(() => log("chaos OFF")) },
      );
    }
    runStart = performance.now();
    const r = await runLoad({ target: gatewayUrl, stages, next, secrets: fleet.secrets, progress: !values.quiet, label: scenario!.name, at: hooks });
    samples = r.samples;
    lagP99 = r.generatorLagP99Ms;
    lagMax = r.generatorLagMaxMs;
  }
  const durationS = (performance.now() - runStart) / 1000;
  await timeline.stop();
  const metricsAfter = await metricsText();

  let comparison: RunData["comparison"];
  if (values.compare && !values["no-compare"] && values.target === undefined) {
    const meanRate = Math.max(10, samples.length / Math.max(1, durationS));
    const compareS = Math.min(60, Math.max(5, durationS * 0.2));
    const stage: Stage[] = [{ durationS: compareS, fromRps: meanRate, toRps: meanRate, label: "comparison" }];
    const bare = await startTsProcess("bench/harness/bare-proxy-server.ts", [mockUrl], {}, /listening on (http:\/\/[\d.:]+)/);
    started.push(bare);
    log(`comparison: ${meanRate.toFixed(0)} RPS for ${compareS.toFixed(0)} s against the bare proxy, then the gateway`);
    const bareRun = await runLoad({ target: bare.url, stages: stage, next: mixedTraffic(fleet, rng(7), { probes: false }), label: "bare proxy", progress: !values.quiet });
    const gwRun = await runLoad({ target: gatewayUrl, stages: stage, next: mixedTraffic(fleet, rng(7), { probes: false }), label: "gateway", progress: !values.quiet });
    comparison = { rateRps: meanRate, durationS: compareS, bare: bareRun.samples, gateway: gwRun.samples };
  }

  const cpus = os.cpus();
  const config = Object.fromEntries(Object.entries(gatewayEnv).filter(([k]) => !/KEY|SECRET|PASSWORD/.test(k)));
  const data: RunData = {
    run: {
      scenario: scenario!.name,
      description: scenario!.description,
      command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
      startedAt,
      durationS,
      stages,
      scale,
      config,
      machine: { cpuModel: cpus[0]?.model.trim() ?? "unknown", cores: cpus.length, memoryGb: Math.round(os.totalmem() / 1e9), node: process.version, platform: `${os.platform()} ${os.release()}` },
      gatewayVersion: (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version,
      generatorLagP99Ms: lagP99,
      generatorLagMaxMs: lagMax,
      ...(chaosWindowS ? { chaosWindowS } : {}),
    },
    samples,
    metricsBefore: {},
    metricsAfter: {},
    timeline: timeline.points,
    targets: DEFAULT_TARGETS,
    ...(comparison ? { comparison } : {}),
  };
  writeRawData(outDir, data, metricsBefore, metricsAfter);
  const results = writeReport(outDir);
  process.stdout.write(
    [
      `scenario ${scenario!.name} (scale ${scale}): ${results.totals.requests} requests in ${durationS.toFixed(1)} s`,
      `overhead p50/p95/p99 ${results.overhead.p50.toFixed(2)}/${results.overhead.p95.toFixed(2)}/${results.overhead.p99.toFixed(2)} ms; success ${(results.successRate * 100).toFixed(2)}%; probes allowed ${results.security.probesAllowed}`,
      ...(results.comparison ? [`vs bare proxy at ${results.comparison.rateRps.toFixed(0)} RPS: e2e p50 ${results.comparison.gateway.p50.toFixed(2)} vs ${results.comparison.bare.p50.toFixed(2)} ms (x${results.comparison.ratioP50.toFixed(2)}), p99 ${results.comparison.gateway.p99.toFixed(2)} vs ${results.comparison.bare.p99.toFixed(2)} ms (x${results.comparison.ratioP99.toFixed(2)})`] : []),
      `verdict ${results.verdict}; report: ${path.join(outDir, "report.md")}`,
      "",
    ].join("\n"),
  );
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}

// Never leave the processes this run started behind, whatever happens.
const stopAll = () => {
  for (const s of started) s.child.kill("SIGKILL");
};
process.on("uncaughtException", (err) => {
  process.stderr.write(`bench failed: ${err.stack ?? String(err)}\n`);
  stopAll();
  process.exit(1);
});
process.on("SIGINT", () => {
  stopAll();
  process.exit(130);
});

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  });
