/** Snapshots of the gateway's /metrics and /health, before, during and after a run. */

export type MetricSnapshot = Record<string, number>;

/** Parses Prometheus text into `name{labels}` → value (histogram buckets included). */
export function parseMetrics(text: string): MetricSnapshot {
  const out: MetricSnapshot = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}

/** Sum of every series of `name` whose labels include all of `match`, in `after` minus `before`. */
export function delta(before: MetricSnapshot, after: MetricSnapshot, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of Object.entries(after)) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (!Object.entries(match).every(([k, v]) => key.includes(`${k}="${v}"`))) continue;
    sum += value - (before[key] ?? 0);
  }
  return sum;
}

export function value(snapshot: MetricSnapshot, key: string): number | undefined {
  return snapshot[key];
}

export interface TimelinePoint {
  t: number;
  rssBytes?: number;
  cpuSeconds?: number;
  lagP99Ms?: number;
  heapBytes?: number;
  breakers: Record<string, string>;
}

export async function fetchMetrics(url: string, token?: string): Promise<MetricSnapshot> {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  if (!r.ok) return {};
  return parseMetrics(await r.text());
}

/** Samples process metrics and breaker states every `everyMs` until stopped. */
export function startTimeline(o: { gatewayUrl: string; metricsToken?: string; everyMs: number; startedAt: () => number }) {
  const points: TimelinePoint[] = [];
  let stopped = false;
  let wake = () => {};
  const tick = async () => {
    while (!stopped) {
      const t = (performance.now() - o.startedAt()) / 1000;
      try {
        const [m, health] = await Promise.all([
          fetchMetrics(o.gatewayUrl, o.metricsToken),
          fetch(`${o.gatewayUrl}/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json() as Promise<{ breakers?: Record<string, string> }>),
        ]);
        const point: TimelinePoint = { t, breakers: health.breakers ?? {} };
        const rss = m.gateway_process_resident_memory_bytes;
        const cpu = m.gateway_process_cpu_seconds_total;
        const lag = m.gateway_nodejs_eventloop_lag_p99_seconds;
        const heap = m.gateway_nodejs_heap_used_bytes;
        if (rss !== undefined) point.rssBytes = rss;
        if (cpu !== undefined) point.cpuSeconds = cpu;
        if (lag !== undefined) point.lagP99Ms = lag * 1000;
        if (heap !== undefined) point.heapBytes = heap;
        points.push(point);
      } catch {
        // the gateway may be busy: the next tick tries again
      }
      await new Promise<void>((r) => {
        const timer = setTimeout(r, o.everyMs);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
  };
  const running = tick();
  return {
    points,
    async stop() {
      if (stopped) return;
      stopped = true;
      wake();
      await running;
    },
  };
}
