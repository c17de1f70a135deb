import { describe, expect, it } from "vitest";
import type { Sample } from "../../bench/harness/loadgen.js";
import { delta, parseMetrics, type TimelinePoint } from "../../bench/harness/observe.js";
import { computeResults, DEFAULT_TARGETS, percentiles, resourceTrend, type RunData } from "../../bench/harness/report/compute.js";
import { renderMarkdown } from "../../bench/harness/report/markdown.js";
import { PLACEHOLDERS, TEMPLATE_HEADINGS } from "./report-checks.js";

const call = (t: number, over: Partial<Sample> = {}): Sample => ({ t, kind: "serpapi", tool: "serpapi", expect: "allow", duplicate: false, status: 200, e2eMs: 30, lagMs: 0, overheadMs: 1, upstreamMs: 25, cache: "miss", attempts: 1, ...over });
const probe = (t: number, status = 403, code = "scope_denied"): Sample => ({ t, kind: "probe:out_of_scope", tool: "gmail_send", expect: "deny", duplicate: false, status, code, e2eMs: 2, lagMs: 0 });

function runData(samples: Sample[], over: Partial<RunData["run"]> = {}, rest: Partial<RunData> = {}): RunData {
  return {
    run: {
      scenario: "baseline",
      description: "test",
      command: "npm run bench -- --scenario baseline",
      startedAt: "2026-11-24T10:00:00.000Z",
      durationS: 10,
      stages: [{ durationS: 10, fromRps: 10, toRps: 10, label: "10 RPS" }],
      scale: 1,
      config: {},
      machine: { cpuModel: "test cpu", cores: 2, memoryGb: 4, node: "v20", platform: "linux" },
      gatewayVersion: "0.1.0",
      generatorLagP99Ms: 0.5,
      generatorLagMaxMs: 1,
      ...over,
    },
    samples,
    metricsBefore: {},
    metricsAfter: {},
    timeline: [],
    targets: DEFAULT_TARGETS,
    ...rest,
  };
}

const steady = (n: number, f: (i: number) => Partial<Sample> = () => ({})) => Array.from({ length: n }, (_, i) => call((i * 10) / n, f(i)));

describe("report computations", () => {
  it("computes exact percentiles (nearest rank)", () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(p).toMatchObject({ count: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 });
    expect(percentiles([])).toMatchObject({ count: 0, p99: 0 });
  });

  it("counts probes apart from the success rate, and an allowed probe is a security failure (NOT READY)", () => {
    const samples = [...steady(100), probe(1), probe(2, 401, "token_invalid")];
    const good = computeResults(runData(samples));
    expect(good.successRate).toBe(1);
    expect(good.totals).toMatchObject({ requests: 102, calls: 100, probes: 2 });
    expect(good.security).toMatchObject({ probes: 2, probesRefused: 2, probesAllowed: 0 });
    expect(good.verdict).toBe("READY");

    const leaky = computeResults(runData([...steady(100), probe(1), { ...probe(2), status: 200, code: undefined }]));
    expect(leaky.security.probesAllowed).toBe(1);
    expect(leaky.checks.find((c) => c.name === "Security probes allowed")!.met).toBe(false);
    expect(leaky.verdict).toBe("NOT READY");
  });

  it("applies the written verdict rule: critical miss → NOT READY, only non-critical misses → CONDITIONAL", () => {
    // 1 failure in 100 calls: 99 % < 99.5 % (critical).
    expect(computeResults(runData(steady(100, (i) => (i === 0 ? { status: 504, code: "upstream_timeout" } : {})))).verdict).toBe("NOT READY");
    // Overhead p99 over 60 ms (critical).
    expect(computeResults(runData(steady(100, (i) => (i >= 98 ? { overheadMs: 80 } : {})))).verdict).toBe("NOT READY");
    // Cache scenario with a 20 % hit ratio (non-critical).
    const cache = computeResults(runData(steady(100, (i) => ({ cache: i % 5 === 0 ? "hit" : "miss", e2eMs: i % 5 === 0 ? 2 : 30 })), { scenario: "cache" }));
    expect(cache.cache.ratio).toBeCloseTo(0.2);
    expect(cache.cache.reduction).toBeCloseTo(1 - 2 / 30);
    expect(cache.verdict).toBe("CONDITIONAL");
    // The same hit ratio in mixed traffic is not judged (15 % duplicates cannot reach 40 %).
    expect(computeResults(runData(steady(100, (i) => ({ cache: i % 5 === 0 ? "hit" : "miss" })))).verdict).toBe("READY");
  });

  it("takes targets from the run data, so they are configurable", () => {
    const d = runData(steady(100, () => ({ overheadMs: 5 })));
    expect(computeResults(d).verdict).toBe("READY");
    d.targets = { ...DEFAULT_TARGETS, overheadP50Ms: 2 };
    const r = computeResults(d);
    expect(r.checks.find((c) => c.name === "Gateway overhead p50")).toMatchObject({ met: false, target: "≤ 2 ms" });
    expect(r.verdict).toBe("NOT READY");
  });

  it("judges chaos success outside the fault window and its recovery, and reads breakers, fast-fail and retries", () => {
    // Faults 10–20 s of 30 s; the serpapi breaker is open from 12 s until 24 s.
    const timeline: TimelinePoint[] = Array.from({ length: 31 }, (_, t) => ({ t, breakers: { serpapi: t >= 12 && t < 24 ? "open" : "closed" } }));
    const samples: Sample[] = [];
    for (let i = 0; i < 300; i++) {
      const t = i / 10;
      if (t >= 10 && t < 12) samples.push(call(t, i % 2 ? { attempts: 2 } : { status: 504, code: "upstream_timeout", attempts: 3 }));
      else if (t >= 12 && t < 24) samples.push(call(t, { status: 503, code: "circuit_open", e2eMs: 3, attempts: 0 }));
      else samples.push(call(t));
    }
    const metricsBefore = parseMetrics('gateway_breaker_transitions_total{tool="serpapi",from="closed",to="open"} 2\n');
    const metricsAfter = parseMetrics('gateway_breaker_transitions_total{tool="serpapi",from="closed",to="open"} 3\ngateway_retries_total{tool="serpapi",outcome="success"} 10\n');
    const r = computeResults(runData(samples, { scenario: "chaos", durationS: 30, stages: [{ durationS: 30, fromRps: 10, toRps: 10 }], chaosWindowS: [10, 20] }, { timeline, metricsBefore, metricsAfter }));
    expect(r.faultWindow).toMatchObject({ fromS: 10, toS: 24, calls: 140 });
    expect(r.successRate).toBe(1);
    expect(r.breakers.serpapi).toMatchObject({ opens: 1, avgOpenMs: 12_000, recoveryMs: 4_000 });
    expect(r.breakerOpenShare!.serpapi).toBeCloseTo(0.8);
    expect(r.fastFail).toMatchObject({ count: 120, p99: 3 });
    expect(r.retries).toMatchObject({ retryableErrors: 20, successfulRetries: 10, rate: 0.5, metricSuccess: 10, metricFailure: 0 });
    expect(r.checks.find((c) => c.name === "Retry success")!.met).toBe(false);
    expect(r.verdict).toBe("CONDITIONAL");
  });

  it("computes achieved RPS and errors per stage from the scheduled times", () => {
    const samples = [...Array.from({ length: 20 }, (_, i) => call(i * 0.25)), ...Array.from({ length: 50 }, (_, i) => call(5 + i * 0.1, i < 5 ? { status: 502, code: "upstream_error" } : {}))];
    const r = computeResults(runData(samples, { stages: [{ durationS: 5, fromRps: 4, toRps: 4, label: "a" }, { durationS: 5, fromRps: 10, toRps: 10, label: "b" }] }));
    expect(r.stages.map((s) => [s.label, s.achievedRps, s.errorRate])).toEqual([
      ["a", 4, 0],
      ["b", 10, 0.1],
    ]);
    expect(r.totals.peakRps).toBe(10);
    expect(r.totals.failuresByCode).toEqual({ upstream_error: 5 });
  });

  it("tolerates missing metric families and parses labels", () => {
    const m = parseMetrics('# HELP x\n# TYPE x counter\ngateway_policy_denials_total{reason="scope_denied",tool="a",action="b"} 3\ngateway_policy_denials_total{reason="quota_exceeded",tool="a",action="b"} 1\n');
    expect(delta({}, m, "gateway_policy_denials_total")).toBe(4);
    expect(delta({}, m, "gateway_policy_denials_total", { reason: "scope_denied" })).toBe(3);
    expect(delta({}, {}, "gateway_breaker_transitions_total", { tool: "x" })).toBe(0);
    const r = computeResults(runData(steady(10)));
    expect(r.breakers.serpapi!.opens).toBe(0);
    expect(r.security.provenanceMismatches).toBe(0);
  });

  it("buckets the resource trend per hour for long runs and per sixth otherwise", () => {
    const point = (t: number, mb: number): TimelinePoint => ({ t, rssBytes: mb * 1_048_576, heapBytes: (mb / 2) * 1_048_576, lagP99Ms: 2, breakers: {} });
    const long = resourceTrend(Array.from({ length: 73 }, (_, i) => point(i * 100, 100 + i)), 7200);
    expect(long.unit).toBe("hour");
    expect(long.buckets.map((b) => b.label)).toEqual(["hour 1", "hour 2"]);
    expect(long.rssGrowthMb).toBeCloseTo(36, 0);
    const short = resourceTrend(Array.from({ length: 60 }, (_, i) => point(i, 100)), 60);
    expect(short.buckets).toHaveLength(6);
    expect(short.rssGrowthMb).toBe(0);
  });

  it("plans capacity from the capacity search's last passing step", () => {
    const d = runData(steady(100), {
      scenario: "capacity",
      planRps: [100, 1000],
      capacitySteps: [
        { rateRps: 50, achievedRps: 50, overheadP99Ms: 2, e2eP99Ms: 30, errorRate: 0, generatorLagP99Ms: 1 },
        { rateRps: 75, achievedRps: 75, overheadP99Ms: 3, e2eP99Ms: 31, errorRate: 0, generatorLagP99Ms: 1 },
        { rateRps: 113, achievedRps: 90, overheadP99Ms: 90, e2eP99Ms: 200, errorRate: 0.02, generatorLagP99Ms: 1, broke: "errors" },
      ],
    });
    const c = computeResults(d).capacity;
    expect(c.maxSustainedRps).toBe(75);
    expect(c.stoppedOn!.rateRps).toBe(113);
    expect(c.perInstance).toBeCloseTo(52.5);
    expect(c.plan).toEqual([
      { rps: 100, instances: 2 },
      { rps: 1000, instances: 20 },
    ]);
  });

  it("renders every template section, in order, with no placeholder", () => {
    const d = runData([...steady(100), probe(3)], {}, { timeline: [{ t: 0, rssBytes: 1e8, cpuSeconds: 1, lagP99Ms: 3, heapBytes: 5e7, breakers: {} }, { t: 5, rssBytes: 1.1e8, cpuSeconds: 1.5, lagP99Ms: 4, heapBytes: 5e7, breakers: {} }] });
    const md = renderMarkdown(d, computeResults(d));
    let from = 0;
    for (const h of TEMPLATE_HEADINGS) {
      const at = `\n${md}`.indexOf(`\n${h}\n`, from);
      expect(at, `${h} missing or out of order`).toBeGreaterThan(-1);
      from = at;
    }
    for (const p of PLACEHOLDERS) expect(md, `placeholder ${p}`).not.toMatch(p);
    expect(md).toContain("**Production Readiness:** ✅ READY");
  });
});
