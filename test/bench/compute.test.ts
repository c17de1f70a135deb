import { describe, expect, it } from "vitest";
import type { Sample } from "../../bench/harness/loadgen.js";
import { delta, parseMetrics, type TimelinePoint } from "../../bench/harness/observe.js";
import { computeResults, DEFAULT_TARGETS, percentiles, resourceTrend, type RunData } from "../../bench/harness/report/compute.js";
import { renderMarkdown } from "../../bench/harness/report/markdown.js";
import { PLACEHOLDERS, TEMPLATE_HEADINGS } from "./report-checks.js";

const call = (t: number, over: Partial<Sample> = {}): Sample => ({
  t,
  kind: "serpapi",
  tool: "serpapi",
  expect: "allow",
  duplicate: false,
  status: 200,
  e2eMs: 27,
  lagMs: 0,
  overheadMs: 1,
  upstreamMs: 25,
  cache: "miss",
  attempts: 1,
  ...over,
});
/** A probe's sample; `code: null` for an answer without an error code. */
const probe = (t: number, status = 403, code: string | null = "scope_denied", kind = "probe:out_of_scope"): Sample => ({
  t,
  kind,
  tool: "gmail_send",
  expect: "deny",
  duplicate: false,
  status,
  ...(code === null ? {} : { code }),
  e2eMs: 2,
  lagMs: 0,
});
/** A healthy gateway's resource samples: judged checks need them. */
const healthyTimeline = (durationS: number, breakers: (t: number) => Record<string, string> = () => ({})): TimelinePoint[] =>
  Array.from({ length: 21 }, (_, i) => ({
    t: (i * durationS) / 20,
    rssBytes: 100 * 1_048_576,
    heapBytes: 5e7,
    cpuSeconds: i * 0.1,
    lagP99Ms: 2,
    breakers: breakers((i * durationS) / 20),
  }));
/** The bare-proxy comparison of a run: the gateway `addedMs` slower at every percentile. */
const comparison = (addedMs = 1): NonNullable<RunData["comparison"]> => ({
  rateRps: 10,
  durationS: 2,
  bare: Array.from({ length: 100 }, (_, i) => call(i / 50, { e2eMs: 25 + (i % 10) })),
  gateway: Array.from({ length: 100 }, (_, i) => call(i / 50, { e2eMs: 25 + addedMs + (i % 10) })),
});

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
    timeline: healthyTimeline(over.durationS ?? 10),
    targets: DEFAULT_TARGETS,
    comparison: comparison(),
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
    const samples = [...steady(100), probe(1), probe(2, 401, "token_invalid", "probe:tampered_token")];
    const good = computeResults(runData(samples));
    expect(good.successRate).toBe(1);
    expect(good.totals).toMatchObject({ requests: 102, calls: 100, probes: 2 });
    expect(good.security).toMatchObject({ probes: 2, probesRefused: 2, probesAllowed: 0 });
    expect(good.verdict).toBe("READY");

    const leaky = computeResults(runData([...steady(100), probe(1), probe(2, 200, null)]));
    expect(leaky.security.probesAllowed).toBe(1);
    expect(leaky.checks.find((c) => c.name === "Security probes refused with the expected code")!.met).toBe(false);
    expect(leaky.verdict).toBe("NOT READY");
  });

  // Each of these made the old rule (any non-2xx probe counted as refused) say READY.
  it("a probe answered with a 5xx, or refused with another code than its kind's, is a failed probe (NOT READY)", () => {
    for (const bad of [
      probe(2, 500, "internal_error", "probe:forged_token"),
      probe(2, 503, null, "probe:revoked_token"),
      probe(2, 401, "token_invalid", "probe:revoked_token"),
      probe(2, 403, "scope_denied", "probe:over_quota"),
    ]) {
      const r = computeResults(runData([...steady(100), probe(1, 401, "token_revoked", "probe:revoked_token"), bad]));
      expect(r.security).toMatchObject({ probes: 2, probesRefused: 1, probesAllowed: 0, probesMisanswered: 1, probesFailed: 1 });
      expect(r.verdict, JSON.stringify(bad)).toBe("NOT READY");
      const md = renderMarkdown(runData([...steady(100), bad]), r);
      expect(md).not.toMatch(/All \d+ probes were refused/);
      expect(md).toContain("1 of 2 refused with their expected code (0 allowed, 1 answered otherwise)");
    }
    const good = computeResults(
      runData([
        ...steady(100),
        probe(1, 401, "token_revoked", "probe:revoked_token"),
        probe(2, 429, "quota_exceeded", "probe:over_quota"),
        probe(3, 401, "token_invalid", "probe:forged_token"),
      ]),
    );
    expect(good.security).toMatchObject({ probesRefused: 3, probesFailed: 0 });
    expect(good.verdict).toBe("READY");
  });

  it("a mixed-traffic run that sent no probe cannot pass its security check", () => {
    const r = computeResults(runData(steady(100)));
    expect(r.checks.find((c) => c.name === "Security probes refused with the expected code")!.met).toBe(false);
    expect(r.verdict).toBe("NOT READY");
  });

  it("judges latency as the client sees it: a gateway that reports 1 ms but answers 20 ms late is NOT READY", () => {
    // Server-Timing says 1 ms (it cannot see queueing); the client waited 20 ms more than the upstream took.
    const queued = computeResults(runData([...steady(100, () => ({ e2eMs: 45, overheadMs: 1, upstreamMs: 25 })), probe(1)]));
    expect(queued.selfReportedOverhead.p99).toBe(1);
    expect(queued.overhead.p99).toBe(20);
    expect(queued.checks.find((c) => c.name === "Client-observed overhead p99")!.met).toBe(false);
    expect(queued.verdict).toBe("NOT READY");
  });

  it("judges end-to-end p99 against the bare proxy of the same run", () => {
    const slow = computeResults(runData([...steady(100), probe(1)], {}, { comparison: comparison(15) }));
    expect(slow.comparison!.ratioP99).toBeGreaterThan(1.1);
    expect(slow.checks.find((c) => c.name === "End-to-end p99 vs bare proxy")!.met).toBe(false);
    expect(slow.verdict).toBe("NOT READY");
    // Without the comparison the run cannot be READY either: the latency claim is unproven.
    const { comparison: _none, ...rest } = runData([...steady(100), probe(1)]);
    expect(computeResults(rest).verdict).toBe("CONDITIONAL");
  });

  it("applies the written verdict rule: critical miss → NOT READY, only non-critical misses → CONDITIONAL", () => {
    // 1 failure in 100 calls: 99 % < 99.9 % (critical).
    expect(computeResults(runData([...steady(100, (i) => (i === 0 ? { status: 504, code: "upstream_timeout" } : {})), probe(1)])).verdict).toBe("NOT READY");
    // Client-observed overhead p99 over 5 ms (critical).
    expect(computeResults(runData([...steady(100, (i) => (i >= 98 ? { e2eMs: 40 } : {})), probe(1)])).verdict).toBe("NOT READY");
    // Cache scenario with a 20 % hit ratio (non-critical).
    const cache = computeResults(
      runData(
        steady(100, (i) => ({ cache: i % 5 === 0 ? "hit" : "miss", e2eMs: i % 5 === 0 ? 2 : 27, upstreamMs: i % 5 === 0 ? 0 : 25 })),
        { scenario: "cache" },
      ),
    );
    expect(cache.cache.ratio).toBeCloseTo(0.2);
    expect(cache.cache.reduction).toBeCloseTo(1 - 2 / 27);
    expect(cache.verdict).toBe("CONDITIONAL");
    // The same hit ratio in mixed traffic is not judged (15 % duplicates cannot reach 40 %).
    expect(computeResults(runData([...steady(100, (i) => ({ cache: i % 5 === 0 ? "hit" : "miss" })), probe(1)])).verdict).toBe("READY");
  });

  it("takes targets from the run data, so they are configurable", () => {
    const d = runData([...steady(100), probe(1)]);
    expect(computeResults(d).verdict).toBe("READY");
    d.targets = { ...DEFAULT_TARGETS, clientOverheadP99Ms: 1 };
    const r = computeResults(d);
    expect(r.checks.find((c) => c.name === "Client-observed overhead p99")).toMatchObject({ met: false, target: "≤ 1 ms" });
    expect(r.verdict).toBe("NOT READY");
  });

  it("judges chaos success outside the fault window and its recovery, and reads breakers, fast-fail and retries", () => {
    // Faults 10–20 s of 30 s; the serpapi breaker is open from 12 s until 24 s.
    const timeline: TimelinePoint[] = Array.from({ length: 31 }, (_, t) => ({
      t,
      rssBytes: 1e8,
      lagP99Ms: 2,
      breakers: { serpapi: t >= 12 && t < 24 ? "open" : "closed" },
    }));
    const samples: Sample[] = [];
    for (let i = 0; i < 300; i++) {
      const t = i / 10;
      if (t >= 10 && t < 12) samples.push(call(t, i % 2 ? { attempts: 2 } : { status: 504, code: "upstream_timeout", attempts: 3 }));
      else if (t >= 12 && t < 24) samples.push(call(t, { status: 503, code: "circuit_open", e2eMs: 3, attempts: 0 }));
      else samples.push(call(t));
    }
    const metricsBefore = parseMetrics('gateway_breaker_transitions_total{tool="serpapi",from="closed",to="open"} 2\n');
    const metricsAfter = parseMetrics(
      'gateway_breaker_transitions_total{tool="serpapi",from="closed",to="open"} 3\ngateway_retries_total{tool="serpapi",outcome="success"} 10\n',
    );
    const r = computeResults(
      runData(
        [...samples, probe(1)],
        {
          scenario: "chaos",
          durationS: 30,
          stages: [{ durationS: 30, fromRps: 10, toRps: 10 }],
          chaosWindowS: [10, 20],
          chaosSettings: { serpapi: { timeout: 0.5 } },
        },
        { timeline, metricsBefore, metricsAfter },
      ),
    );
    expect(r.faultWindow).toMatchObject({ fromS: 10, toS: 24, calls: 140 });
    expect(r.successRate).toBe(1);
    expect(r.breakers.serpapi).toMatchObject({ opens: 1, avgOpenMs: 12_000, recoveryMs: 4_000 });
    expect(r.breakerOpenShare!.serpapi).toBeCloseTo(0.8);
    expect(r.fastFail).toMatchObject({ count: 120, p99: 3 });
    expect(r.retries).toMatchObject({ retryableErrors: 20, successfulRetries: 10, rate: 0.5, metricSuccess: 10, metricFailure: 0 });
    expect(r.checks.find((c) => c.name === "Breaker serpapi opened under faults")!.met).toBe(true);
    expect(r.checks.find((c) => c.name === "Breaker serpapi closed after faults")!.met).toBe(true);
    expect(r.checks.find((c) => c.name === "Retry success")!.met).toBe(false);
    expect(r.verdict).toBe("CONDITIONAL");
  });

  // The old rule let both of these through as "not exercised".
  it("in the chaos scenario a breaker that never opens, or never closes again, is a critical miss", () => {
    const chaos = (breakerAt: (t: number) => string, fastFails: boolean) => {
      const timeline: TimelinePoint[] = Array.from({ length: 31 }, (_, t) => ({ t, rssBytes: 1e8, lagP99Ms: 2, breakers: { serpapi: breakerAt(t) } }));
      const samples = Array.from({ length: 300 }, (_, i) => {
        const t = i / 10;
        if (fastFails && t >= 12 && t < 20) return call(t, { status: 503, code: "circuit_open", e2eMs: 2, upstreamMs: 0, attempts: 0 });
        return call(t, t >= 10 && t < 20 && i % 2 ? { attempts: 2 } : {});
      });
      const opens = breakerAt(15) === "open" ? 1 : 0;
      const metricsAfter = parseMetrics(`gateway_breaker_transitions_total{tool="serpapi",from="closed",to="open"} ${opens}\n`);
      return computeResults(
        runData(
          [...samples, probe(1)],
          {
            scenario: "chaos",
            durationS: 30,
            stages: [{ durationS: 30, fromRps: 10, toRps: 10 }],
            chaosWindowS: [10, 20],
            chaosSettings: { serpapi: { timeout: 0.5 } },
          },
          { timeline, metricsAfter },
        ),
      );
    };
    const neverOpened = chaos(() => "closed", false);
    expect(neverOpened.checks.find((c) => c.name === "Breaker serpapi opened under faults")!.met).toBe(false);
    expect(neverOpened.checks.find((c) => c.name === "Breaker fast-fail p99")!.met).toBe(false);
    expect(neverOpened.verdict).toBe("NOT READY");

    const stuckOpen = chaos((t) => (t >= 12 ? "open" : "closed"), true);
    expect(stuckOpen.breakers.serpapi!.closedAtEnd).toBe(false);
    expect(stuckOpen.checks.find((c) => c.name === "Breaker serpapi closed after faults")).toMatchObject({ met: false, value: "still open at the end" });
    expect(stuckOpen.verdict).toBe("NOT READY");

    const slowToClose = chaos((t) => (t >= 12 && t < 28 ? "open" : "closed"), true);
    expect(slowToClose.breakers.serpapi!.recoveryMs).toBe(8_000);
    expect(slowToClose.checks.find((c) => c.name === "Breaker serpapi closed after faults")!.met).toBe(true); // 8 s ≤ 30 s
    // Outside the chaos scenario nothing sets out to open a breaker: not judged.
    expect(computeResults(runData([...steady(100), probe(1)])).checks.some((c) => c.name.startsWith("Breaker serpapi"))).toBe(false);
  });

  it("judges soak memory growth per hour, and only in the soak scenario", () => {
    const growing = (pctPerHour: number): TimelinePoint[] =>
      Array.from({ length: 61 }, (_, i) => ({ t: i * 60, rssBytes: 100 * 1_048_576 * (1 + (pctPerHour / 100) * (i / 60)), lagP99Ms: 2, breakers: {} }));
    const soak = (pctPerHour: number) =>
      computeResults(runData([...steady(100), probe(1)], { scenario: "soak", durationS: 3600 }, { timeline: growing(pctPerHour) }));
    expect(soak(2).soakGrowth!.pctPerHour).toBeCloseTo(2, 0);
    expect(soak(2).verdict).toBe("READY");
    expect(soak(10).checks.find((c) => c.name === "Soak RSS growth")!.met).toBe(false);
    expect(soak(10).verdict).toBe("NOT READY");
    expect(
      computeResults(runData([...steady(100), probe(1)], { durationS: 3600 }, { timeline: growing(10) })).checks.find((c) => c.name === "Soak RSS growth")!.met,
    ).toBeUndefined();
  });

  it("computes achieved RPS and errors per stage from the scheduled times", () => {
    const samples = [
      ...Array.from({ length: 20 }, (_, i) => call(i * 0.25)),
      ...Array.from({ length: 50 }, (_, i) => call(5 + i * 0.1, i < 5 ? { status: 502, code: "upstream_error" } : {})),
    ];
    const r = computeResults(
      runData(samples, {
        stages: [
          { durationS: 5, fromRps: 4, toRps: 4, label: "a" },
          { durationS: 5, fromRps: 10, toRps: 10, label: "b" },
        ],
      }),
    );
    expect(r.stages.map((s) => [s.label, s.achievedRps, s.errorRate])).toEqual([
      ["a", 4, 0],
      ["b", 10, 0.1],
    ]);
    expect(r.totals.peakRps).toBe(10);
    expect(r.totals.failuresByCode).toEqual({ upstream_error: 5 });
  });

  it("tolerates missing metric families and parses labels", () => {
    const m = parseMetrics(
      '# HELP x\n# TYPE x counter\ngateway_policy_denials_total{reason="scope_denied",tool="a",action="b"} 3\ngateway_policy_denials_total{reason="quota_exceeded",tool="a",action="b"} 1\n',
    );
    expect(delta({}, m, "gateway_policy_denials_total")).toBe(4);
    expect(delta({}, m, "gateway_policy_denials_total", { reason: "scope_denied" })).toBe(3);
    expect(delta({}, {}, "gateway_breaker_transitions_total", { tool: "x" })).toBe(0);
    const r = computeResults(runData(steady(10)));
    expect(r.breakers.serpapi!.opens).toBe(0);
    expect(r.security.provenanceMismatches).toBe(0);
  });

  it("buckets the resource trend per hour for long runs and per sixth otherwise", () => {
    const point = (t: number, mb: number): TimelinePoint => ({ t, rssBytes: mb * 1_048_576, heapBytes: (mb / 2) * 1_048_576, lagP99Ms: 2, breakers: {} });
    const long = resourceTrend(
      Array.from({ length: 73 }, (_, i) => point(i * 100, 100 + i)),
      7200,
    );
    expect(long.unit).toBe("hour");
    expect(long.buckets.map((b) => b.label)).toEqual(["hour 1", "hour 2"]);
    expect(long.rssGrowthMb).toBeCloseTo(36, 0);
    const short = resourceTrend(
      Array.from({ length: 60 }, (_, i) => point(i, 100)),
      60,
    );
    expect(short.buckets).toHaveLength(6);
    expect(short.rssGrowthMb).toBe(0);
  });

  it("plans capacity from the capacity search's last passing step", () => {
    const d = runData(
      steady(100),
      {
        scenario: "capacity",
        planRps: [100, 1000],
        capacitySteps: [
          { rateRps: 50, achievedRps: 50, overheadP99Ms: 2, e2eP99Ms: 30, errorRate: 0, generatorLagP99Ms: 1 },
          { rateRps: 75, achievedRps: 75, overheadP99Ms: 3, e2eP99Ms: 31, errorRate: 0, generatorLagP99Ms: 1 },
          { rateRps: 113, achievedRps: 90, overheadP99Ms: 90, e2eP99Ms: 200, errorRate: 0.02, generatorLagP99Ms: 1, broke: "errors" },
        ],
      },
      { timeline: [] },
    );
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
    const d = runData([...steady(100), probe(3)]);
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
