/**
 * Gateway vs a bare Node reverse proxy (undici) over the same mock upstream, in one run:
 * `npm run bench:proxy [-- --connections 32 --seconds 10 --rate 1000 --rate-seconds 10 --latency 0]`.
 *
 * The gateway runs with its default configuration (access log at `info`, audit, metrics, breakers,
 * retries, cache) and a policy with a rate limit and a quota on the path; unique queries take the
 * cache-miss path. Prints, for both: saturation throughput (closed loop), p50/p99 at a fixed rate
 * (open model, latency from the scheduled send), CPU µs per call at that rate (from /proc), and for
 * the gateway its RSS, event-loop lag p99 and the cache-hit path's throughput; then each goal of the
 * performance issue with its measured value. Figures, not assertions: nothing here fails a build.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ROOT, liveGatewayEnv, startGatewayProcess, startMockServer, startTsProcess, type ChildService } from "./harness/processes.js";
import { closedLoop } from "./harness/closed-loop.js";
import { printProfile } from "./harness/cpu-profile.js";
import { hasWrk, wrkLoop } from "./harness/wrk.js";
import { runLoad } from "./harness/loadgen.js";
import { delta, fetchMetrics, type MetricSnapshot } from "./harness/observe.js";
import { clientOverheadMs, percentiles } from "./harness/report/compute.js";
import { setUpFleet } from "./harness/traffic.js";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "32" },
    seconds: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    "rate-seconds": { type: "string", default: "10" },
    latency: { type: "string", default: "0" },
    "log-level": { type: "string", default: "info" },
    generator: { type: "string", default: "auto" },
    profile: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    /** KEY=VALUE settings for the gateway beyond its defaults (repeatable), e.g. --env AUDIT_SQLITE_WRITER=thread. */
    env: { type: "string", multiple: true, default: [] },
    /** Another build of the gateway to measure (e.g. an older commit's dist/src/cli/main.js), for before/after figures. */
    "gateway-entry": { type: "string", default: "dist/src/cli/main.js" },
    /** Flags for the gateway's node (repeatable), e.g. --node-flag=--max-semi-space-size=64. */
    "node-flag": { type: "string", multiple: true, default: [] },
    /** Then hold the fixed rate on the gateway alone for this many minutes, sampling RSS each minute (the growth goal). */
    "rss-minutes": { type: "string", default: "0" },
  },
});
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const rateSeconds = Number(values["rate-seconds"]);
const started: ChildService[] = [];

/** User and system CPU seconds of a process so far, all its threads (Linux /proc; clock ticks are 1/100 s here). */
function cpuSeconds(pid: number): { user: number; system: number } {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

/** Open-model load at `rate` RPS of unique searches; CPU per call from the target process. */
async function fixedRate(target: string, pid: number, token: string, label: string, sampleLag?: () => Promise<number | undefined>, durationS = rateSeconds) {
  let n = 0;
  const next = async () => ({
    tool: "serpapi",
    action: "search",
    params: { q: `fixed ${n++} ${randomBytes(4).toString("hex")}` },
    token,
    headers: {},
    expect: "allow" as const,
    kind: "serpapi",
    duplicate: false,
  });
  const lags: number[] = [];
  const poll = sampleLag
    ? setInterval(() => {
        void sampleLag().then((v) => v !== undefined && lags.push(v));
      }, 1000)
    : undefined;
  const gcBefore = sampleLag ? await fetchMetrics(target) : undefined;
  const cpuBefore = cpuSeconds(pid);
  const r = await runLoad({ target, stages: [{ durationS, fromRps: rate, toRps: rate }], next, label });
  const cpuAfter = cpuSeconds(pid);
  if (poll) clearInterval(poll);
  const gc = gcBefore === undefined ? "" : gcLine(gcBefore, await fetchMetrics(target), durationS);
  const ok = r.samples.filter((s) => s.status === 200);
  const e2e = percentiles(ok.map((s) => s.e2eMs));
  const perCall = (seconds: number) => (seconds * 1e6) / Math.max(1, r.samples.length);
  const systemUsPerCall = perCall(cpuAfter.system - cpuBefore.system);
  const cpuUsPerCall = perCall(cpuAfter.user - cpuBefore.user) + systemUsPerCall;
  const slowNotUpstream = ok.filter((s) => clientOverheadMs(s) > 50).length;
  console.log(
    `${label.padEnd(12)} ${rate} RPS for ${durationS} s: p50 ${e2e.p50.toFixed(2)} ms   p99 ${e2e.p99.toFixed(2)} ms   CPU ${cpuUsPerCall.toFixed(0)} µs/call (system ${systemUsPerCall.toFixed(0)})   errors ${r.samples.length - ok.length}   generator lag p99 ${r.generatorLagP99Ms.toFixed(2)} ms${gc}`,
  );
  return { e2e, cpuUsPerCall, slowNotUpstream, lagP99Ms: lags.length ? Math.max(...lags) : undefined, errors: r.samples.length - ok.length };
}

/** GC during a run: pauses per second and share of the time, by kind, and how many major pauses passed 10 ms. */
function gcLine(before: MetricSnapshot, after: MetricSnapshot, seconds: number): string {
  const parts: string[] = [];
  for (const gc of ["minor", "major", "incremental"]) {
    const count = delta(before, after, "gateway_nodejs_gc_pause_seconds_count", { gc });
    const total = delta(before, after, "gateway_nodejs_gc_pause_seconds_sum", { gc });
    if (count > 0) parts.push(`${gc} ${(count / seconds).toFixed(1)}/s ${((total / seconds) * 100).toFixed(1)} %`);
  }
  const over10 =
    delta(before, after, "gateway_nodejs_gc_pause_seconds_count", { gc: "major" }) -
    delta(before, after, "gateway_nodejs_gc_pause_seconds_bucket", { gc: "major", le: "0.01" });
  return `\n             GC: ${parts.join(", ")}; major pauses over 10 ms: ${over10}`;
}

/**
 * The gateway alone at the fixed rate for `minutes`, one minute at a time (so the generator keeps
 * one minute of samples, not all of them), with its RSS and V8 heap after each minute. Growth is
 * the mean RSS of the last quarter of the run against the second quarter's (the first quarter
 * is warm-up: the cache and the SQLite page cache filling to their bounds); more than 5 % is growth.
 */
async function rssOverTime(target: string, pid: number, token: string, minutes: number, sampleLag: () => Promise<number | undefined>) {
  console.log(`\nmemory over time: the gateway alone at ${rate} RPS for ${minutes} min`);
  const rows: { rss: number; heap: number }[] = [];
  for (let m = 1; m <= minutes; m++) {
    await fixedRate(target, pid, token, `minute ${m}`, sampleLag, 60);
    const metrics = await fetchMetrics(target);
    rows.push({ rss: rssMb(pid), heap: (metrics["gateway_nodejs_heap_used_bytes"] ?? 0) / 1048576 });
    console.log(`             RSS ${rows.at(-1)!.rss.toFixed(0)} MB   V8 heap used ${rows.at(-1)!.heap.toFixed(0)} MB`);
  }
  const quarter = Math.max(1, Math.floor(rows.length / 4));
  const mean = (xs: { rss: number }[]) => xs.reduce((a, r) => a + r.rss, 0) / Math.max(1, xs.length);
  const settled = mean(rows.slice(quarter, 2 * quarter));
  const last = mean(rows.slice(-quarter));
  const growth = (last - settled) / settled;
  return [
    `no RSS growth over ${minutes} min at ${rate} RPS`,
    `${(growth * 100).toFixed(1)} % (${settled.toFixed(0)} → ${last.toFixed(0)} MB; max ${Math.max(...rows.map((r) => r.rss)).toFixed(0)} MB)`,
    growth <= 0.05,
  ] as [string, string, boolean];
}

// wrk (C, Debian package) when installed: a Node generator on a 2-core machine takes a core of its
// own and caps the bare proxy first, which would flatter the gateway's ratio.
const extraEnv = Object.fromEntries(values.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
const useWrk = values.generator === "wrk" || (values.generator === "auto" && hasWrk());

async function saturation(target: string, token: string, label: string, cached = false, durationS = seconds) {
  const r = useWrk ? await wrkLoop({ target, token, connections, durationS, cached }) : await closedLoop({ target, token, connections, durationS, cached });
  console.log(`${label.padEnd(12)} ${r.rps.toFixed(0).padStart(6)} RPS   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   errors ${r.errors}`);
  return r;
}

// The gateway runs compiled, as `npm start` runs it (tsx's loader would show in profiles and
// hide line numbers); built here so the figures are of the code in the tree.
if (!values["no-build"]) {
  const build = spawnSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) throw new Error("tsc failed");
}

try {
  const mock = await startMockServer(values.latency);
  started.push(mock);
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-proxy-bench-"));
  const profileDir = values.profile ? fs.mkdtempSync(path.join(os.tmpdir(), "4runr-proxy-profile-")) : undefined;
  const gateway = await startGatewayProcess(
    { ...liveGatewayEnv({ dataDir, adminKey, mockUrl: mock.url, logLevel: values["log-level"] }), ...extraEnv },
    30_000,
    undefined,
    [...values["node-flag"], ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`])],
    values["gateway-entry"],
  );
  started.push(gateway);
  const bare = await startTsProcess("bench/harness/bare-proxy-server.ts", [mock.url], {}, /listening on (http:\/\/[\d.:]+)/);
  started.push(bare);
  const fleet = await setUpFleet({
    gatewayUrl: gateway.url,
    adminKey,
    mockUrl: mock.url,
    agents: 1,
    runId: randomBytes(3).toString("hex"),
    agentRatePerSecond: 1_000_000,
    agentQuotaPerDay: 1_000_000_000,
  });
  const token = await fleet.agents[0]!.token();
  const gwPid = gateway.child.pid!;
  const lagP99 = async () => {
    const m = await fetchMetrics(gateway.url);
    const v = m["gateway_nodejs_eventloop_lag_p99_seconds"];
    return v === undefined ? undefined : v * 1000;
  };
  console.log(
    `gateway (LOG_LEVEL=${values["log-level"]}, audit, metrics, policy with rate limit + quota, breakers, retries) ${Object.keys(extraEnv).length > 0 ? ` with ${values.env.join(" ")}` : ""}${values["node-flag"].length > 0 ? ` node ${values["node-flag"].join(" ")}` : ""} ${values["gateway-entry"] === "dist/src/cli/main.js" ? "" : ` (${values["gateway-entry"]})`} vs bare reverse proxy: serpapi:search, mock upstream latency ${values.latency} ms, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}`,
  );
  console.log(`\nsaturation: closed loop (${useWrk ? "wrk" : "Node generator"}), ${connections} connections, ${seconds} s each, unique queries (cache miss)`);
  await saturation(gateway.url, token, "warm-up", false, 3);
  const b = await saturation(bare.url, token, "bare proxy");
  const beforeSaturation = await fetchMetrics(gateway.url);
  const g = await saturation(gateway.url, token, "gateway");
  const afterSaturation = await fetchMetrics(gateway.url);
  const commitDelta = (name: string) => delta(beforeSaturation, afterSaturation, name);
  const commits = commitDelta("gateway_audit_commit_records_count");
  if (commits > 0)
    console.log(
      `             audit: ${(commits / seconds).toFixed(0)} commits/s of ${(commitDelta("gateway_audit_commit_records_sum") / commits).toFixed(1)} records, ${((commitDelta("gateway_audit_commit_duration_seconds_sum") / commits) * 1000).toFixed(3)} ms each (on the event loop)`,
    );
  const hit = await saturation(gateway.url, token, "gateway hit", true);
  console.log(`\nfixed rate: open model, latency from the scheduled send`);
  const bf = await fixedRate(bare.url, bare.child.pid!, token, "bare proxy");
  const gf = await fixedRate(gateway.url, gwPid, token, "gateway", lagP99);
  const rss = rssMb(gwPid);
  const memory = await fetchMetrics(gateway.url);
  const mb = (name: string) => ((memory[name] ?? 0) / 1048576).toFixed(0);
  console.log(
    `gateway memory: RSS ${rss.toFixed(0)} MB, V8 heap used ${mb("gateway_nodejs_heap_used_bytes")} of ${mb("gateway_nodejs_heap_total_bytes")} MB; response cache ${mb("gateway_cache_bytes")} MB`,
  );
  const goals: [string, string, boolean][] = [
    ["saturation throughput ≥ 0.6× bare", `${(g.rps / b.rps).toFixed(2)}× (${g.rps.toFixed(0)} vs ${b.rps.toFixed(0)} RPS)`, g.rps >= 0.6 * b.rps],
    ["cache-hit throughput ≥ 0.8× bare", `${(hit.rps / b.rps).toFixed(2)}× (${hit.rps.toFixed(0)} RPS)`, hit.rps >= 0.8 * b.rps],
    [
      `p99 at ${rate} RPS ≤ bare p99 + 2 ms`,
      `${gf.e2e.p99.toFixed(2)} vs ${bf.e2e.p99.toFixed(2)} ms (+${(gf.e2e.p99 - bf.e2e.p99).toFixed(2)} ms)`,
      gf.e2e.p99 <= bf.e2e.p99 + 2,
    ],
    [
      `event-loop lag p99 ≤ 5 ms at ${rate} RPS`,
      gf.lagP99Ms === undefined ? "not sampled" : `${gf.lagP99Ms.toFixed(2)} ms (worst 1 s window)`,
      gf.lagP99Ms !== undefined && gf.lagP99Ms <= 5,
    ],
    ["no call > 50 ms not caused by the upstream", `${gf.slowNotUpstream} calls`, gf.slowNotUpstream === 0],
    [
      "CPU per call ≤ 1.7× bare",
      `${(gf.cpuUsPerCall / bf.cpuUsPerCall).toFixed(2)}× (${gf.cpuUsPerCall.toFixed(0)} vs ${bf.cpuUsPerCall.toFixed(0)} µs)`,
      gf.cpuUsPerCall <= 1.7 * bf.cpuUsPerCall,
    ],
    [`gateway RSS at ${rate} RPS ≤ 150 MB`, `${rss.toFixed(0)} MB`, rss <= 150],
  ];
  const rssMinutes = Number(values["rss-minutes"]);
  if (rssMinutes > 0) goals.push(await rssOverTime(gateway.url, gwPid, token, rssMinutes, lagP99));
  console.log(`\ngoals (docs/benchmarks.md), measured in this run:`);
  for (const [goal, value, met] of goals) console.log(`  ${met ? "met   " : "MISSED"}  ${goal.padEnd(44)} ${value}`);
  fs.rmSync(dataDir, { recursive: true, force: true });
  if (profileDir !== undefined) {
    await gateway.stop();
    const file = fs.readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
    if (file === undefined) console.log("\nno CPU profile was written (the gateway did not exit cleanly)");
    else printProfile(path.join(profileDir, file));
  }
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
}
