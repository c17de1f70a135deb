import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../bench/harness/processes.js";
import { runBench, type BenchOptions } from "../../bench/harness/run.js";
import { arrivals, expectedRequests, targetRate, type Stage } from "../../bench/harness/schedule.js";
import { percentiles } from "../../bench/harness/report/compute.js";
import { readNdjson } from "../../bench/harness/report/run-dir.js";
import { redactCommandLine, redactConfig } from "../../bench/harness/redact.js";
import { gunzipSync } from "node:zlib";
import { PLACEHOLDERS, TEMPLATE_HEADINGS } from "./report-checks.js";

describe("open-model schedule", () => {
  const ramp = [{ durationS: 10, fromRps: 0, toRps: 50 }];

  it("ramps linearly between stage endpoints", () => {
    expect(targetRate(ramp, 0)).toBe(0);
    expect(targetRate(ramp, 5)).toBe(25);
    expect(targetRate([...ramp, { durationS: 5, fromRps: 50, toRps: 50 }], 12)).toBe(50);
    expect(targetRate(ramp, 11)).toBe(0);
  });

  it("schedules as many requests as the area under the rate curve, denser as the rate grows", () => {
    const times = [...arrivals(ramp)];
    expect(Math.abs(times.length - expectedRequests(ramp))).toBeLessThanOrEqual(1);
    const firstHalf = times.filter((t) => t < 5).length;
    expect(firstHalf).toBe(62); // a quarter of the area (62.5), exactly
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
  });

  it("percentiles are nearest-rank", () => {
    expect(percentiles([5, 1, 4, 2, 3])).toMatchObject({ p50: 3, max: 5, count: 5 });
    expect(percentiles(Array.from({ length: 100 }, (_, i) => i + 1))).toMatchObject({ p95: 95, p99: 99 });
  });
});

/** Every byte a run directory holds, gzipped raw data unpacked. */
const everything = (dir: string) =>
  fs
    .readdirSync(dir)
    .map((f) => (f.endsWith(".gz") ? gunzipSync(fs.readFileSync(path.join(dir, f))) : fs.readFileSync(path.join(dir, f))).toString("utf8"))
    .join("\n");

const regenerated = (dir: string) => fs.readFileSync(path.join(dir, "report.md"), "utf8").replace(/\*\*Report Generated:\*\*.*\n/, "");

/** Everything a user must get from a run, checked against the raw data it left. */
function checkRunDirectory(dir: string, scenario: string) {
  for (const f of [
    "report.md",
    "report.html",
    "results.json",
    "samples.ndjson.gz",
    "run.json",
    "metrics-before.txt",
    "metrics-after.txt",
    "timeline.ndjson.gz",
  ])
    expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
  const report = fs.readFileSync(path.join(dir, "report.md"), "utf8");

  // Every section of the template, in the template's order; nothing left unfilled.
  const lines = report.split("\n");
  let at = -1;
  for (const heading of TEMPLATE_HEADINGS) {
    const found = lines.indexOf(heading, at + 1);
    expect(found, `section "${heading}" missing or out of order`).toBeGreaterThan(at);
    at = found;
  }
  for (const p of PLACEHOLDERS) expect(report, `placeholder ${p}`).not.toMatch(p);

  // Numbers agree with the raw data.
  const samples = readNdjson<{ t: number; expect: string; status: number }>(dir, "samples");
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "run.json"), "utf8")) as {
    run: { stages: Stage[]; command: string; machine: { cpuModel: string; cores: number; node: string } };
  };
  const results = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8")) as {
    totals: { requests: number; calls: number; probes: number };
    security: { probesAllowed: number };
    verdict: string;
  };
  expect(samples.length).toBeGreaterThan(0);
  expect(results.totals.requests).toBe(samples.length);
  expect(results.totals.calls + results.totals.probes).toBe(samples.length);
  // Open model: every scheduled request was sent and recorded, none dropped because others were slow.
  if (scenario !== "capacity") expect(samples.length).toBe([...arrivals(meta.run.stages)].length);
  expect(results.security.probesAllowed).toBe(samples.filter((s) => s.expect === "deny" && s.status >= 200 && s.status < 300).length);
  expect(report).toContain(`${results.totals.calls} legitimate calls`);
  expect(report).toContain(
    `**Production Readiness:** ${results.verdict === "READY" ? "✅ READY" : results.verdict === "CONDITIONAL" ? "⚠️ CONDITIONAL" : "❌ NOT READY"}`,
  );
  expect(meta.run.command).toContain(`--scenario ${scenario}`);
  expect(meta.run.machine.cores).toBeGreaterThan(0);
  expect(meta.run.machine.node).toBe(process.version);
  expect(fs.readFileSync(path.join(dir, "metrics-after.txt"), "utf8")).toMatch(/^gateway_requests_total\{/m);
  const html = fs.readFileSync(path.join(dir, "report.html"), "utf8");
  expect(html.match(/<svg/g)?.length ?? 0).toBeGreaterThanOrEqual(5);
  for (const p of PLACEHOLDERS) expect(html, `placeholder ${p} in html`).not.toMatch(p);
  return { report, results };
}

/** Each scenario scaled down to a few seconds: a test of the harness and its report, not of speed. */
const ADMIN_CANARY = `canary-admin-${"k".repeat(8)}-${Date.now()}`;
const METRICS_CANARY = `canary-metrics-${Date.now()}`;
const QUICK: [string, Partial<BenchOptions>][] = [
  // Secrets given on the command line must not reach any artifact of the run.
  [
    "baseline",
    {
      scale: 0.008,
      compare: true,
      adminKey: ADMIN_CANARY,
      metricsToken: METRICS_CANARY,
      command: `npm run bench -- --scenario baseline --admin-key ${ADMIN_CANARY} --metrics-token=${METRICS_CANARY} --duration 0.008`,
    },
  ],
  ["spike", { scale: 0.03 }],
  ["soak", { scale: 0.0008 }],
  // Long enough that the fault window holds dozens of calls even when the machine is busy.
  ["chaos", { scale: 0.04 }],
  ["cache", { scale: 0.02 }],
  ["big", { scale: 0.002 }],
  ["capacity", { scale: 0.1, maxRps: 80 }],
];

describe("secrets never reach a run's artifacts", () => {
  it("redacts secret-named flags, variables and URL passwords, and keeps everything else", () => {
    expect(redactCommandLine("npm run bench -- --scenario chaos --admin-key abc --metrics-token=def --target http://u:pw@10.0.0.1:3000 --duration 1")).toBe(
      "npm run bench -- --scenario chaos --admin-key *** --metrics-token=*** --target http://u:***@10.0.0.1:3000 --duration 1",
    );
    expect(redactCommandLine("GATEWAY_ADMIN_KEY=s3cret JOB_CALLBACK_SECRET='x y' PORT=3000 npm run bench")).toBe(
      "GATEWAY_ADMIN_KEY=*** JOB_CALLBACK_SECRET=*** PORT=3000 npm run bench",
    );
    expect(redactConfig({ GATEWAY_MASTER_KEY: "m", METRICS_TOKEN: "t", DATABASE_URL: "postgres://app:pw@db/x", LOG_LEVEL: "warn" })).toEqual({
      GATEWAY_MASTER_KEY: "***",
      METRICS_TOKEN: "***",
      DATABASE_URL: "postgres://app:***@db/x",
      LOG_LEVEL: "warn",
    });
  });
});

describe("the proof harness writes a complete report for every scenario", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-harness-"));
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  // In process (createGateway with mock upstreams) and concurrently, so the whole sweep stays short.
  it.concurrent.each(QUICK)(
    "%s (in process)",
    async (scenario, options) => {
      const dir = path.join(out, scenario);
      const run = await runBench({
        scenario,
        scale: 1,
        inProcess: true,
        quiet: true,
        agents: 2,
        mockLatencyMs: 2,
        mockJitterMs: 1,
        compare: false,
        out: dir,
        ...options,
      });
      expect(run.dir).toBe(dir);
      const { report } = checkRunDirectory(dir, scenario);
      // Everything it started is stopped.
      await expect(fetch(`${run.gatewayUrl}/health`)).rejects.toThrow();
      if (scenario === "baseline") {
        expect(report).toMatch(/Cost against a bare Node reverse proxy:\*\* at \d+ RPS/);
        const all = everything(dir);
        expect(all).not.toContain(ADMIN_CANARY);
        expect(all).not.toContain(METRICS_CANARY);
        expect(all).toContain("--admin-key *** --metrics-token=***");
        expect(all).toContain('"GATEWAY_ADMIN_KEY": "***"');
      }
      if (scenario === "chaos") {
        expect(report).toMatch(/Faults on from \d+ s to \d+ s/);
        // Faults were really switched on and off again through the admin API.
        const after = fs.readFileSync(path.join(dir, "metrics-after.txt"), "utf8");
        expect(after).toMatch(/^gateway_chaos_injected_total\{.*\} [1-9]/m);
        expect(after).toMatch(/^gateway_chaos_active 0$/m);
      }
      if (scenario === "capacity") expect(report).toMatch(/50 RPS → achieved/);
      if (scenario === "soak") expect(report).toMatch(/\| part 1\/6 \(/);
    },
    // Seven scenarios run at once in this process: on a busy machine the slowest needs more than a minute.
    180_000,
  );

  it("runs as one command (separate processes) and `npm run report` rebuilds the same report", async () => {
    const dir = path.join(out, "cli-spike");
    const run = (args: string[]) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (c: Buffer) => (output += c.toString()));
        child.stderr.on("data", (c: Buffer) => (output += c.toString()));
        child.on("exit", (code) => resolve({ code, output }));
      });
    const bench = await run([
      "bench/harness/cli.ts",
      "--scenario",
      "spike",
      "--duration",
      "0.02",
      "--out",
      dir,
      "--agents",
      "2",
      "--mock-latency",
      "2",
      "--mock-jitter",
      "1",
      "--no-compare",
    ]);
    expect(bench.code, bench.output).toBe(0);
    // The progress line: elapsed, target RPS, achieved RPS, p99, errors.
    expect(bench.output).toMatch(/\[spike +\d+s\/\d+s\] target [\d.]+ rps \| achieved \d+ rps \| p99 [\d.]+ ms \| errors \d+/);
    expect(bench.output).toMatch(/verdict (READY|CONDITIONAL|NOT READY); report: /);
    checkRunDirectory(dir, "spike");
    const before = regenerated(dir);
    fs.rmSync(path.join(dir, "report.md"));
    const regen = await run(["bench/harness/report/regenerate.ts", dir]);
    expect(regen.code, regen.output).toBe(0);
    expect(regenerated(dir)).toBe(before);

    const bad = await run(["bench/harness/cli.ts", "--scenario", "nope"]);
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(/unknown or missing --scenario "nope"/);
  }, 60_000);
});
