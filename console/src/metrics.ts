/** Rates and percentiles per tool from two samples of the gateway's own Prometheus metrics. */

export interface MetricValue {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}
export interface MetricsSample {
  at: string;
  metrics: { name: string; type: string; values: MetricValue[] }[];
}

interface ToolCounters {
  total: number;
  errors: number;
  /** Cumulative bucket counts by upper bound (ms), +Inf last. */
  buckets: [number, number][];
}

export interface ToolRates {
  callsPerSecond: number;
  /** Share of calls answered 5xx, in percent; null without calls. */
  errorPercent: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

function countersByTool(sample: MetricsSample): Map<string, ToolCounters> {
  const byTool = new Map<string, ToolCounters>();
  const of = (tool: string) => {
    let c = byTool.get(tool);
    if (c === undefined) byTool.set(tool, (c = { total: 0, errors: 0, buckets: [] }));
    return c;
  };
  for (const family of sample.metrics) {
    for (const v of family.values) {
      const tool = String(v.labels.tool ?? "");
      if (tool === "") continue;
      if (family.name === "gateway_requests_total") {
        of(tool).total += v.value;
        if (v.labels.status === "5xx") of(tool).errors += v.value;
      } else if (family.name === "gateway_request_duration_ms" && v.metricName?.endsWith("_bucket")) {
        const le = v.labels.le === "+Inf" ? Infinity : Number(v.labels.le);
        of(tool).buckets.push([le, v.value]);
      }
    }
  }
  for (const c of byTool.values()) c.buckets.sort((a, b) => a[0] - b[0]);
  return byTool;
}

/** The q-quantile of the calls counted between two cumulative histograms, interpolated within its bucket. */
export function quantileOf(before: [number, number][], after: [number, number][], q: number): number | null {
  const deltas = after.map(([le, count], i) => [le, count - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = deltas.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of deltas) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lowerBound; // beyond the last finite bucket: its bound is all we know
      const inBucket = count - lowerCount;
      return inBucket <= 0 ? le : lowerBound + ((le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

/** Per tool, what happened between two samples. */
export function ratesBetween(before: MetricsSample, after: MetricsSample): Map<string, ToolRates> {
  const seconds = Math.max(0.001, (Date.parse(after.at) - Date.parse(before.at)) / 1000);
  const a = countersByTool(before);
  const rates = new Map<string, ToolRates>();
  for (const [tool, now] of countersByTool(after)) {
    const then = a.get(tool) ?? { total: 0, errors: 0, buckets: [] };
    const calls = now.total - then.total;
    rates.set(tool, {
      callsPerSecond: calls / seconds,
      errorPercent: calls > 0 ? (100 * (now.errors - then.errors)) / calls : null,
      p50Ms: quantileOf(then.buckets, now.buckets, 0.5),
      p99Ms: quantileOf(then.buckets, now.buckets, 0.99),
    });
  }
  return rates;
}
