import { describe, expect, it } from "vitest";
import { quantileOf, ratesBetween, type MetricsSample } from "../../console/src/metrics.js";

/** A sample as GET /api/console/metrics returns it, for one tool. */
function sample(at: string, tool: string, counts: { "2xx": number; "5xx": number }, buckets: [number | "+Inf", number][]): MetricsSample {
  return {
    at,
    metrics: [
      {
        name: "gateway_requests_total",
        type: "counter",
        values: Object.entries(counts).map(([status, value]) => ({ labels: { tool, action: "search", status }, value })),
      },
      {
        name: "gateway_request_duration_ms",
        type: "histogram",
        values: [
          ...buckets.map(([le, value]) => ({ metricName: "gateway_request_duration_ms_bucket", labels: { tool, le }, value })),
          { metricName: "gateway_request_duration_ms_count", labels: { tool }, value: buckets.at(-1)![1] },
        ],
      },
    ],
  };
}

describe("the console's charts: rates and percentiles from two samples of the gateway's metrics", () => {
  it("interpolates a quantile inside the bucket that holds it, from the calls between the samples only", () => {
    // Before: 100 calls all under 1 ms. Between: 100 more, 50 in (1, 5] and 50 in (5, 10].
    const before: [number, number][] = [
      [1, 100],
      [5, 100],
      [10, 100],
      [Infinity, 100],
    ];
    const after: [number, number][] = [
      [1, 100],
      [5, 150],
      [10, 200],
      [Infinity, 200],
    ];
    expect(quantileOf(before, after, 0.5)).toBe(5);
    expect(quantileOf(before, after, 0.25)).toBe(3);
    expect(quantileOf(before, after, 0.99)).toBeCloseTo(9.9);
  });

  it("says nothing (null) without calls, and the last finite bound beyond it", () => {
    const same: [number, number][] = [
      [1, 3],
      [Infinity, 3],
    ];
    expect(quantileOf(same, same, 0.5)).toBeNull();
    expect(
      quantileOf(
        [
          [1, 0],
          [Infinity, 0],
        ],
        [
          [1, 0],
          [Infinity, 4],
        ],
        0.99,
      ),
    ).toBe(1);
  });

  it("turns counters into calls per second and a 5xx share per tool", () => {
    const a = sample("2026-11-30T12:00:00.000Z", "serpapi", { "2xx": 10, "5xx": 0 }, [
      [1, 10],
      [5, 10],
      ["+Inf", 10],
    ]);
    const b = sample("2026-11-30T12:00:02.000Z", "serpapi", { "2xx": 28, "5xx": 2 }, [
      [1, 20],
      [5, 30],
      ["+Inf", 30],
    ]);
    const rates = ratesBetween(a, b).get("serpapi")!;
    expect(rates.callsPerSecond).toBe(10);
    expect(rates.errorPercent).toBe(10);
    expect(rates.p50Ms).toBe(1);
    const idle = ratesBetween(b, b).get("serpapi")!;
    expect([idle.callsPerSecond, idle.errorPercent, idle.p50Ms, idle.p99Ms]).toEqual([0, null, null, null]);
  });
});
