/**
 * The proof harness: `npm run bench -- --scenario <name> [--duration <scale>] [--target <url>] [--out <dir>]`.
 * Without --target it starts mock upstreams and a gateway on 127.0.0.1 (separate processes, or inside
 * this one with --in-process), sets up agents, credentials and policies, runs the scenario, compares
 * against a bare reverse proxy over the same upstream, writes the raw data and the report, and stops
 * everything it started. See docs/benchmarks.md.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { activeServices, runBench } from "./run.js";
import { redactCommandLine } from "./redact.js";
import { SCENARIOS } from "./scenarios.js";
import type { Targets } from "./report/compute.js";

const USAGE = `usage: npm run bench -- --scenario <${Object.keys(SCENARIOS).join("|")}> [options]
  --duration <scale>      multiply every stage's length (e.g. 0.05 for a quick run; default 1)
  --target <url>          an already running gateway (needs --admin-key and --mock-url)
  --admin-key <key>       its admin key (or GATEWAY_ADMIN_KEY)
  --metrics-token <t>     its METRICS_TOKEN, when /metrics is protected
  --mock-url <url>        mock upstream base URL the target gateway reaches
  --out <dir>             run directory (default reports/<timestamp>-<scenario>)
  --in-process            gateway and mock upstreams inside the harness process (createGateway)
  --no-compare            skip the bare reverse proxy comparison
  --agents <n>            agents sharing the traffic (default 8)
  --mock-latency <ms>     mock upstream base latency (default 20), --mock-jitter <ms> (default 10)
  --targets <json>        override targets, e.g. '{"clientOverheadP99Ms":8,"successRate":0.999}'
  --plan-rps <a,b>        rates to size the fleet for in Capacity Planning (default 500,2000)
  --max-rps <n>           capacity: highest step to try (default 3000)
  --seed <n>              traffic mix seed (default 42)
  --quiet                 no progress lines`;

const { values } = parseArgs({
  options: {
    scenario: { type: "string" },
    duration: { type: "string", default: "1" },
    target: { type: "string" },
    "admin-key": { type: "string" },
    "metrics-token": { type: "string" },
    "mock-url": { type: "string" },
    out: { type: "string" },
    "in-process": { type: "boolean", default: false },
    agents: { type: "string", default: "8" },
    "mock-latency": { type: "string", default: "20" },
    "mock-jitter": { type: "string", default: "10" },
    "no-compare": { type: "boolean", default: false },
    targets: { type: "string" },
    "plan-rps": { type: "string" },
    "max-rps": { type: "string" },
    seed: { type: "string", default: "42" },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

const fail = (message: string): never => {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
};
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values.scenario === undefined || SCENARIOS[values.scenario] === undefined) fail(`unknown or missing --scenario "${values.scenario ?? ""}"`);
const numberOf = (name: string, text: string | undefined, min: number, max: number): number => {
  const n = Number(text);
  if (!(n >= min && n <= max)) fail(`--${name} must be a number between ${min} and ${max}`);
  return n;
};
let targets: Partial<Targets> | undefined;
if (values.targets !== undefined) {
  try {
    targets = JSON.parse(values.targets) as Partial<Targets>;
  } catch {
    fail("--targets must be JSON");
  }
}

// Never leave the processes this run started behind, whatever happens.
const killAll = () => {
  for (const s of activeServices) s.kill?.();
};
process.on("SIGINT", () => {
  killAll();
  process.exit(130);
});
process.on("SIGTERM", () => {
  killAll();
  process.exit(143);
});

// Bounded in time whatever happens: the scenario's length (capacity: its step ceiling) plus setup,
// comparison and teardown allowances; past that everything started is killed.
const scaleValue = Number(values.duration);
const scenarioDef = SCENARIOS[values.scenario!]!;
const plannedS = scenarioDef.capacity
  ? 20 * Math.max(3, scenarioDef.capacity.stepS * scaleValue)
  : scenarioDef.stages.reduce((s, st) => s + Math.max(1, st.durationS * scaleValue), 0);
const deadlineS = plannedS * 1.5 + 240;
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${deadlineS.toFixed(0)} s (planned ${plannedS.toFixed(0)} s); stopping everything\n`);
  killAll();
  process.exit(124);
}, deadlineS * 1000);
watchdog.unref();

try {
  const { dir, results } = await runBench({
    scenario: values.scenario!,
    scale: numberOf("duration", values.duration, 0.001, 10),
    ...(values.target ? { target: values.target } : {}),
    ...(values["admin-key"] ? { adminKey: values["admin-key"] } : {}),
    ...(values["metrics-token"] ? { metricsToken: values["metrics-token"] } : {}),
    ...(values["mock-url"] ? { mockUrl: values["mock-url"] } : {}),
    ...(values.out ? { out: values.out } : {}),
    inProcess: values["in-process"],
    compare: !values["no-compare"],
    agents: numberOf("agents", values.agents, 1, 1000),
    mockLatencyMs: numberOf("mock-latency", values["mock-latency"], 0, 60_000),
    mockJitterMs: numberOf("mock-jitter", values["mock-jitter"], 0, 60_000),
    seed: numberOf("seed", values.seed, 0, 2 ** 32),
    quiet: values.quiet,
    ...(targets ? { targets } : {}),
    ...(values["max-rps"] ? { maxRps: numberOf("max-rps", values["max-rps"], 1, 1e6) } : {}),
    ...(values["plan-rps"] ? { planRps: values["plan-rps"].split(",").map((v) => numberOf("plan-rps", v, 1, 1e7)) } : {}),
    command: redactCommandLine(`npm run bench -- ${process.argv.slice(2).join(" ")}`.trim()),
  });
  const c = results.comparison;
  process.stdout.write(
    [
      `scenario ${results.scenario}: ${results.totals.requests} requests in ${results.totals.durationS.toFixed(1)} s (${results.totals.achievedAvgRps.toFixed(1)} RPS)`,
      `overhead p50/p95/p99 ${results.overhead.p50.toFixed(2)}/${results.overhead.p95.toFixed(2)}/${results.overhead.p99.toFixed(2)} ms; success ${(results.successRate * 100).toFixed(2)}%; probes allowed ${results.security.probesAllowed}`,
      ...(c
        ? [
            `vs bare proxy at ${c.rateRps.toFixed(0)} RPS: e2e p50 ${c.gateway.p50.toFixed(2)} vs ${c.bare.p50.toFixed(2)} ms (x${c.ratioP50.toFixed(2)}), p99 ${c.gateway.p99.toFixed(2)} vs ${c.bare.p99.toFixed(2)} ms (x${c.ratioP99.toFixed(2)})`,
          ]
        : []),
      ...(results.generator.trustworthy
        ? []
        : [`WARNING: the generator was ${results.generator.lagP99Ms.toFixed(1)} ms late at p99; tail latencies include its own delay`]),
      `verdict ${results.verdict}; report: ${path.join(dir, "report.md")}`,
      "",
    ].join("\n"),
  );
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killAll();
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
}
