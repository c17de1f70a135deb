/**
 * One benchmark run, end to end: start what is needed (mock upstreams, gateway, bare proxy), set up
 * agents, credentials and policies, run the scenario, compare against the bare proxy, write the raw
 * data and the report, and stop everything it started. `cli.ts` is the command-line face of it;
 * tests call `runBench` directly.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config/index.js";
import { createGateway } from "../../src/gateway.js";
import { startBareProxy } from "./bare-proxy.js";
import { runLoad, type Sample } from "./loadgen.js";
import { startTimeline } from "./observe.js";
import { ROOT, startGatewayProcess, startTsProcess } from "./processes.js";
import { SCENARIOS, scaledStages } from "./scenarios.js";
import type { Stage } from "./schedule.js";
import { cacheTraffic, mixedTraffic, rng, setUpFleet } from "./traffic.js";
import { clientOverheadMs, DEFAULT_TARGETS, percentiles, type CapacityStep, type RunData, type Targets } from "./report/compute.js";
import { writeRawData, writeReport } from "./report/run-dir.js";
import { redactCommandLine, redactConfig } from "./redact.js";

export interface BenchOptions {
  scenario: string;
  /** Multiplies every stage's length (0.05 for a quick run). */
  scale: number;
  /** An already running gateway; without it the harness starts its own on 127.0.0.1. */
  target?: string;
  adminKey?: string;
  metricsToken?: string;
  /** Mock upstream base URL the target gateway reaches (http_fetch pages live there). */
  mockUrl?: string;
  out?: string;
  agents?: number;
  mockLatencyMs?: number;
  mockJitterMs?: number;
  /** Run the bare reverse proxy comparison (only when the harness started the gateway). */
  compare?: boolean;
  seed?: number;
  quiet?: boolean;
  /** Gateway and mock upstreams inside this process (createGateway) instead of separate processes. */
  inProcess?: boolean;
  targets?: Partial<Targets>;
  /** Capacity search: highest step rate to try. */
  maxRps?: number;
  /** Rates to size the fleet for in Capacity Planning. */
  planRps?: number[];
  /** The command line to record in the report. */
  command?: string;
}

interface Stoppable {
  name: string;
  stop(): Promise<void>;
  kill?(): void;
}

/** Everything the runs in this process have started and not yet stopped (so a Ctrl-C can kill it). */
export const activeServices = new Set<Stoppable>();

const log = (quiet: boolean | undefined, line: string) => {
  if (!quiet) process.stderr.write(`${line}\n`);
};

/** The commit being measured, so a committed report says what code it proves. */
function gitCommitOf(dir: string): { gitCommit?: string } {
  const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: dir, encoding: "utf8" });
  if (head.status !== 0) return {};
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: dir, encoding: "utf8" }).stdout.trim() !== "";
  return { gitCommit: `${head.stdout.trim()}${dirty ? "+dirty" : ""}` };
}

/** Runs one scenario and writes `report.md`, `report.html`, `results.json` and the raw data to the run directory. */
export async function runBench(o: BenchOptions) {
  const scenario = SCENARIOS[o.scenario];
  if (scenario === undefined) throw new Error(`unknown scenario "${o.scenario}"; known: ${Object.keys(SCENARIOS).join(", ")}`);
  if (!(o.scale > 0 && o.scale <= 10)) throw new Error("--duration is a scale factor in (0, 10] (e.g. 0.05 for a quick run)");
  const scale = o.scale;
  const runId = `${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}-${scenario.name}`;
  const outDir = path.resolve(o.out ?? path.join(ROOT, "reports", runId));
  const targets: Targets = { ...DEFAULT_TARGETS, ...o.targets };
  const mine: Stoppable[] = [];
  const track = (s: Stoppable) => {
    mine.push(s);
    activeServices.add(s);
  };
  let dataDir: string | undefined;
  let timeline: ReturnType<typeof startTimeline> | undefined;

  try {
    let adminKey = o.adminKey ?? process.env.GATEWAY_ADMIN_KEY ?? `bench-${randomBytes(16).toString("hex")}`;
    let gatewayUrl = o.target;
    let mockUrl = o.mockUrl;
    let gatewayEnv: Record<string, string> = {};
    const mode: RunData["run"]["gatewayMode"] = o.target !== undefined ? "external" : o.inProcess ? "in-process" : "separate processes";
    const latency = { MOCK_LATENCY_MS: String(o.mockLatencyMs ?? 20), MOCK_JITTER_MS: String(o.mockJitterMs ?? 10) };
    if (o.target === undefined) {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-bench-"));
      gatewayEnv = {
        DATA_DIR: dataDir,
        GATEWAY_ADMIN_KEY: adminKey,
        // Only this harness's own tokens exist, so clock skew allowance can be zero: expired-token probes come sooner.
        CLOCK_SKEW_SECONDS: "0",
        SSRF_ALLOW: "127.0.0.1/32",
        POLICY_DEFAULTS: "off",
        UPSTREAM_TIMEOUT_MS: "2000",
        LOG_LEVEL: o.quiet ? "error" : "warn",
        ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: `bench_${randomBytes(4).toString("hex")}` } : {}),
        ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL, REDIS_PREFIX: `bench:${randomBytes(4).toString("hex")}:` } : {}),
      };
      if (o.inProcess) {
        // The issue's embedded default: createGateway with the built-in mock upstreams, all in this process.
        Object.assign(gatewayEnv, { UPSTREAM_MODE: "mock", PORT: "0", HOST: "127.0.0.1", SHUTDOWN_GRACE_MS: "2000", ...latency });
        const gateway = await createGateway(loadConfig(gatewayEnv));
        gatewayUrl = await gateway.listen();
        track({ name: "gateway (in-process)", stop: () => gateway.close() });
        mockUrl = gateway.mockUpstreams!.url;
        adminKey = gateway.adminKey.value;
      } else {
        if (mockUrl === undefined) {
          const mock = await startTsProcess(
            "bench/harness/mock-server.ts",
            ["--latency", latency.MOCK_LATENCY_MS, "--jitter", latency.MOCK_JITTER_MS],
            {},
            /listening on (http:\/\/[\d.:]+)/,
          );
          track({ name: "mock upstreams", stop: () => mock.stop(), kill: () => mock.child.kill("SIGKILL") });
          mockUrl = mock.url;
        }
        Object.assign(gatewayEnv, { UPSTREAM_MODE: "live", SERPAPI_BASE_URL: mockUrl, OPENAI_BASE_URL: mockUrl, GMAIL_BASE_URL: mockUrl });
        const gateway = await startGatewayProcess(gatewayEnv);
        track({ name: "gateway", stop: () => gateway.stop(), kill: () => gateway.child.kill("SIGKILL") });
        gatewayUrl = gateway.url;
      }
    } else if (mockUrl === undefined) {
      throw new Error("--target needs --mock-url: the mock upstream base URL that gateway reaches (http_fetch pages are fetched from it)");
    }
    const url = gatewayUrl!;
    const mocks = mockUrl;
    log(o.quiet, `gateway ${url} (${mode}), mock upstreams ${mocks}, report in ${outDir}`);
    const metricsHeaders: Record<string, string> = o.metricsToken ? { authorization: `Bearer ${o.metricsToken}` } : {};
    const metricsText = async () => {
      const r = await fetch(`${url}/metrics`, { headers: metricsHeaders });
      return r.ok ? r.text() : "";
    };
    // Before setup, so the agents, tokens and the one intentional revocation of the setup are in the deltas.
    const metricsBefore = await metricsText();
    const fleet = await setUpFleet({
      gatewayUrl: url,
      adminKey,
      mockUrl: mocks,
      agents: o.agents ?? 8,
      runId: randomBytes(3).toString("hex"),
      clockSkewSeconds: o.target === undefined ? 0 : 30,
    });
    const random = rng(o.seed ?? 42);
    const next = scenario.traffic === "cache" ? cacheTraffic(fleet, random) : mixedTraffic(fleet, random);

    let runStart = performance.now();
    timeline = startTimeline({
      gatewayUrl: url,
      ...(o.metricsToken ? { metricsToken: o.metricsToken } : {}),
      everyMs: Math.max(500, Math.min(5000, 1000 * scale * 2)),
      startedAt: () => runStart,
    });
    let stages: Stage[];
    let samples: Sample[] = [];
    let lagP99 = 0;
    let lagMax = 0;
    let chaosWindowS: [number, number] | undefined;
    let capacitySteps: CapacityStep[] | undefined;
    const startedAt = new Date().toISOString();
    const loadAtStart = os.loadavg()[0]!;

    if (scenario.capacity) {
      // Step the rate up until overhead p99, errors or the achieved rate break the targets.
      const c = scenario.capacity;
      stages = [];
      capacitySteps = [];
      let offset = 0;
      runStart = performance.now();
      for (let rate = c.startRps; rate <= (o.maxRps ?? c.maxRps); rate = Math.round(rate * c.factor)) {
        const stepS = Math.max(3, c.stepS * scale);
        const step: Stage = { durationS: stepS, fromRps: rate, toRps: rate, label: `${rate} RPS` };
        const r = await runLoad({ target: url, stages: [step], next, secrets: fleet.secrets, progress: !o.quiet, label: `capacity ${rate}` });
        samples.push(...r.samples.map((s) => ({ ...s, t: s.t + offset })));
        stages.push(step);
        offset += stepS;
        lagP99 = Math.max(lagP99, r.generatorLagP99Ms);
        lagMax = Math.max(lagMax, r.generatorLagMaxMs);
        const calls = r.samples.filter((s) => s.expect === "allow");
        const errorRate = calls.filter((s) => s.status < 200 || s.status >= 300).length / Math.max(1, calls.length);
        const overheadP99 = percentiles(calls.filter((s) => s.status >= 200 && s.status < 300).map(clientOverheadMs)).p99;
        const e2eP99 = percentiles(calls.map((s) => s.e2eMs)).p99;
        const achieved = r.samples.length / stepS;
        const broke =
          errorRate > 1 - targets.successRate
            ? "errors"
            : overheadP99 > targets.clientOverheadP99Ms
              ? "client-observed overhead p99"
              : achieved < rate * 0.9
                ? "achieved rate"
                : r.generatorLagP99Ms > 50
                  ? "generator lag"
                  : undefined;
        capacitySteps.push({
          rateRps: rate,
          achievedRps: achieved,
          overheadP99Ms: overheadP99,
          e2eP99Ms: e2eP99,
          errorRate,
          generatorLagP99Ms: r.generatorLagP99Ms,
          ...(broke ? { broke } : {}),
        });
        log(
          o.quiet,
          `capacity step ${rate} RPS: achieved ${achieved.toFixed(0)}, overhead p99 ${overheadP99.toFixed(2)} ms, errors ${(errorRate * 100).toFixed(2)}%${broke ? ` — broke on ${broke}` : ""}`,
        );
        if (broke) break;
      }
    } else {
      stages = scaledStages(scenario, scale);
      const hooks = [];
      if (scenario.chaos) {
        const total = stages.reduce((s, st) => s + st.durationS, 0);
        chaosWindowS = [scenario.chaos.from * total, scenario.chaos.to * total];
        const call = async (method: "PUT" | "DELETE", body?: unknown) => {
          // No content-type without a body: Fastify refuses an empty JSON body.
          const headers: Record<string, string> = {
            authorization: `Bearer ${adminKey}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          };
          const r = await fetch(`${url}/api/admin/chaos`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
          if (!r.ok) throw new Error(`${method} /api/admin/chaos answered ${r.status}: ${await r.text()}`);
          log(o.quiet, `chaos ${method === "PUT" ? "ON" : "OFF"}`);
        };
        hooks.push(
          { fraction: scenario.chaos.from, run: () => call("PUT", scenario.chaos!.settings) },
          { fraction: scenario.chaos.to, run: () => call("DELETE") },
        );
      }
      runStart = performance.now();
      const r = await runLoad({ target: url, stages, next, secrets: fleet.secrets, progress: !o.quiet, label: scenario.name, at: hooks });
      samples = r.samples;
      lagP99 = r.generatorLagP99Ms;
      lagMax = r.generatorLagMaxMs;
    }
    const durationS = (performance.now() - runStart) / 1000;
    await timeline.stop();
    const metricsAfter = await metricsText();

    let comparison: RunData["comparison"];
    if (o.compare !== false && o.target === undefined) {
      // The same calls at the run's mean rate against a bare undici reverse proxy over the same mock
      // upstream, then against the gateway with its cache bypassed (the proxy has none), each after a
      // discarded warm-up so neither pays for cold connections.
      const meanRate = Math.max(10, samples.length / Math.max(1, durationS));
      const compareS = Math.min(60, Math.max(2, durationS * 0.2));
      const warmS = Math.min(5, Math.max(0.5, compareS / 4));
      const stage = (s: number): Stage[] => [{ durationS: s, fromRps: meanRate, toRps: meanRate, label: "comparison" }];
      // Same isolation as the gateway: its own process unless the gateway shares this one too.
      let bare: { url: string };
      if (mode === "in-process") {
        const proxy = await startBareProxy(mocks);
        track({ name: "bare proxy", stop: () => proxy.close() });
        bare = proxy;
      } else {
        const proxy = await startTsProcess("bench/harness/bare-proxy-server.ts", [mocks], {}, /listening on (http:\/\/[\d.:]+)/);
        track({ name: "bare proxy", stop: () => proxy.stop(), kill: () => proxy.child.kill("SIGKILL") });
        bare = proxy;
      }
      log(o.quiet, `comparison: ${meanRate.toFixed(0)} RPS for ${compareS.toFixed(1)} s against the bare proxy, then the gateway`);
      const compareTraffic = (seed: number) => mixedTraffic(fleet, rng(seed), { probes: false, bypassCache: true });
      await runLoad({ target: bare.url, stages: stage(warmS), next: compareTraffic(3), label: "bare proxy warm-up", progress: false });
      const bareRun = await runLoad({ target: bare.url, stages: stage(compareS), next: compareTraffic(7), label: "bare proxy", progress: !o.quiet });
      await runLoad({ target: url, stages: stage(warmS), next: compareTraffic(3), label: "gateway warm-up", progress: false });
      const gwRun = await runLoad({ target: url, stages: stage(compareS), next: compareTraffic(7), label: "gateway", progress: !o.quiet });
      comparison = { rateRps: meanRate, durationS: compareS, bare: bareRun.samples, gateway: gwRun.samples };
    }

    const cpus = os.cpus();
    const config = redactConfig({ ...gatewayEnv, ...(o.target !== undefined ? { TARGET: o.target } : {}) });
    const data: RunData = {
      run: {
        scenario: scenario.name,
        description: scenario.description,
        command: redactCommandLine(o.command ?? `npm run bench -- --scenario ${scenario.name} --duration ${scale}`),
        startedAt,
        durationS,
        stages,
        scale,
        config,
        machine: {
          cpuModel: cpus[0]?.model.trim() ?? "unknown",
          cores: cpus.length,
          memoryGb: Math.round(os.totalmem() / 1e9),
          node: process.version,
          platform: `${os.platform()} ${os.release()}`,
          loadAvg: { start: loadAtStart, end: os.loadavg()[0]! },
        },
        gatewayVersion: (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version,
        ...gitCommitOf(ROOT),
        gatewayMode: mode,
        generatorLagP99Ms: lagP99,
        generatorLagMaxMs: lagMax,
        planRps: o.planRps ?? [500, 2000],
        ...(chaosWindowS ? { chaosWindowS } : {}),
        ...(scenario.chaos ? { chaosSettings: scenario.chaos.settings } : {}),
        ...(capacitySteps ? { capacitySteps } : {}),
      },
      samples,
      metricsBefore: {},
      metricsAfter: {},
      timeline: timeline.points,
      targets,
      ...(comparison ? { comparison } : {}),
    };
    writeRawData(outDir, data, metricsBefore, metricsAfter);
    const results = writeReport(outDir);
    return { dir: outDir, results, gatewayUrl: url };
  } finally {
    await timeline?.stop();
    for (const s of mine.reverse()) {
      await s.stop().catch(() => s.kill?.());
      activeServices.delete(s);
    }
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
