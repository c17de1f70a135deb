import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { arrivals, expectedRequests, targetRate } from "../../bench/harness/schedule.js";
import { percentiles } from "../../bench/harness/report/compute.js";
import { ROOT } from "../helpers/promtool.js";

const TEMPLATE = fs.readFileSync(path.join(ROOT, "bench/harness/report/template.md"), "utf8");
const HEADINGS = TEMPLATE.split("\n").filter((l) => /^#{1,3} /.test(l));
const PLACEHOLDERS = [/\[X\]/, /\[DATE\]/, /\[DURATION\]/, /\[VERSION\]/, /\[ENVIRONMENT\]/, /\[DETAILS\]/, /\[RECOMMENDATION/, /\[TIMESTAMP\]/, /\[SUCCESS\/FAILURE\]/, /\[STRONG/, /TODO|TBD|\{\{|undefined|NaN|Infinity/, /✅\/❌/];

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
    expect(firstHalf).toBeGreaterThan(55);
    expect(firstHalf).toBeLessThan(70); // 62.5 expected: a quarter of the area
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
  });

  it("percentiles are nearest-rank", () => {
    expect(percentiles([5, 1, 4, 2, 3])).toMatchObject({ p50: 3, max: 5, count: 5 });
    expect(percentiles(Array.from({ length: 100 }, (_, i) => i + 1))).toMatchObject({ p95: 95, p99: 99 });
  });
});

/** Each scenario scaled down to a few seconds: a test of the harness and its report, not of speed. */
const QUICK: [string, string[]][] = [
  ["baseline", ["--duration", "0.01"]],
  ["spike", ["--duration", "0.04", "--no-compare"]],
  ["soak", ["--duration", "0.001", "--no-compare"]],
  ["chaos", ["--duration", "0.02", "--no-compare"]],
  ["cache", ["--duration", "0.02", "--no-compare"]],
  ["big", ["--duration", "0.002", "--no-compare"]],
  ["capacity", ["--duration", "0.1", "--max-rps", "80", "--no-compare"]],
];

describe("the proof harness writes a complete report for every scenario", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-harness-"));
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it.each(QUICK)("%s", (scenario, args) => {
    const dir = path.join(out, scenario);
    const run = spawnSync(process.execPath, ["--import", "tsx", "bench/harness/cli.ts", "--scenario", scenario, "--out", dir, "--quiet", "--agents", "2", "--mock-latency", "2", "--mock-jitter", "1", ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    for (const f of ["report.md", "report.html", "results.json", "samples.ndjson", "run.json", "metrics-before.txt", "metrics-after.txt", "timeline.ndjson"]) expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
    const report = fs.readFileSync(path.join(dir, "report.md"), "utf8");

    // Every section of the template, in the template's order.
    const lines = report.split("\n");
    let at = -1;
    for (const heading of HEADINGS) {
      const found = lines.indexOf(heading, at + 1);
      expect(found, `section "${heading}" missing or out of order`).toBeGreaterThan(at);
      at = found;
    }
    for (const p of PLACEHOLDERS) expect(report, `placeholder ${p}`).not.toMatch(p);

    // Numbers agree with the raw data.
    const samples = fs.readFileSync(path.join(dir, "samples.ndjson"), "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { expect: string; status: number });
    const results = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8")) as { totals: { requests: number; calls: number; probes: number }; security: { probesAllowed: number }; verdict: string };
    expect(results.totals.requests).toBe(samples.length);
    expect(results.totals.calls + results.totals.probes).toBe(samples.length);
    expect(results.security.probesAllowed).toBe(samples.filter((s) => s.expect === "deny" && s.status >= 200 && s.status < 300).length);
    expect(report).toContain(`${results.totals.calls} legitimate calls`);
    expect(["READY", "CONDITIONAL", "NOT READY"]).toContain(results.verdict);
    expect(report).toContain(`**Production Readiness:** ${results.verdict === "READY" ? "✅ READY" : results.verdict === "CONDITIONAL" ? "⚠️ CONDITIONAL" : "❌ NOT READY"}`);
    expect(fs.readFileSync(path.join(dir, "report.html"), "utf8")).toContain("<svg");

    // `npm run report -- <dir>` rebuilds the same report from the raw data.
    const before = report.replace(/\*\*Report Generated:\*\*.*\n/, "");
    const regen = spawnSync(process.execPath, ["--import", "tsx", "bench/harness/report/regenerate.ts", dir], { cwd: ROOT, encoding: "utf8" });
    expect(regen.status, regen.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, "report.md"), "utf8").replace(/\*\*Report Generated:\*\*.*\n/, "")).toBe(before);
    if (scenario === "chaos") expect(report).toMatch(/Faults on from/);
    if (scenario === "baseline") expect(report).toMatch(/Cost against a bare Node reverse proxy/);
  });
});
