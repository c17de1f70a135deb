import { useEffect, useRef, useState } from "preact/hooks";
import { get } from "../api";
import { LineChart } from "../chart";
import { ratesBetween, type MetricsSample, type ToolRates } from "../metrics";
import { Badge, ErrorNotice, PageHead, useAsync } from "../ui";

interface Health {
  status: string;
  store: string;
  upstreamMode: string;
  features: Record<string, boolean>;
  chaos: { active: boolean; tools?: Record<string, unknown> };
  breakers: Record<string, string>;
  warning?: string;
}
interface Ready {
  status: string;
  checks: Record<string, { status: string; latencyMs?: number; error?: string }>;
}

const POLL_MS = 2000;
const POINTS = 90;

/** Health, readiness, flags, chaos, breakers, live per-tool charts, approvals waiting. */
export function Overview() {
  const [health, setHealth] = useState<Health>();
  const [ready, setReady] = useState<Ready>();
  const [error, setError] = useState<unknown>();
  const [history, setHistory] = useState<{ times: number[]; rates: Map<string, ToolRates>[] }>({ times: [], rates: [] });
  const last = useRef<MetricsSample>();
  const approvals = useAsync(
    () => get<{ approvals?: unknown[]; nextCursor?: string | null } | { error: unknown }>("/api/approvals?status=pending&limit=500", { accept: [404] }),
    [],
  );

  useEffect(() => {
    let live = true;
    const tick = async () => {
      try {
        const [h, r, m] = await Promise.all([get<Health>("/health"), get<Ready>("/ready", { accept: [503] }), get<MetricsSample>("/api/console/metrics")]);
        if (!live) return;
        setHealth(h);
        setReady(r);
        setError(undefined);
        if (last.current !== undefined) {
          const rates = ratesBetween(last.current, m);
          const at = Date.parse(m.at) / 1000;
          setHistory((hist) => ({ times: [...hist.times, at].slice(-POINTS), rates: [...hist.rates, rates].slice(-POINTS) }));
        }
        last.current = m;
      } catch (err) {
        if (live) setError(err);
      }
    };
    void tick();
    const timer = setInterval(() => void tick(), POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);

  const tools = [...new Set(history.rates.flatMap((r) => [...r.keys()]))]
    .filter((tool) => history.rates.some((r) => (r.get(tool)?.callsPerSecond ?? 0) > 0))
    .sort();
  const seriesOf = (pick: (r: ToolRates) => number | null) =>
    tools.map((tool) => ({
      label: tool,
      values: history.rates.map((r) => {
        const v = r.get(tool);
        return v === undefined ? null : pick(v);
      }),
    }));
  const pending =
    approvals.data && "approvals" in approvals.data ? `${approvals.data.approvals?.length ?? 0}${approvals.data.nextCursor ? "+" : ""}` : undefined;

  return (
    <>
      <PageHead title="Overview" />
      <ErrorNotice error={error} />
      <section class="cards" aria-label="status">
        <div class="card">
          <h2>Health</h2>
          <p class="big" data-testid="health-status">
            {health?.status ?? "…"}
          </p>
          <p class="muted">
            store {health?.store ?? "…"} · upstreams {health?.upstreamMode ?? "…"}
          </p>
          {health?.warning ? <p class="warn">{health.warning}</p> : null}
        </div>
        <div class="card">
          <h2>Readiness</h2>
          <p class="big" data-testid="ready-status">
            {ready?.status ?? "…"}
          </p>
          <ul class="plain">
            {Object.entries(ready?.checks ?? {}).map(([name, c]) => (
              <li key={name}>
                {name}: <Badge value={c.status} /> {c.latencyMs !== undefined ? <span class="muted">{c.latencyMs} ms</span> : null}{" "}
                {c.error ? <span class="warn">{c.error}</span> : null}
              </li>
            ))}
            {ready && !("redis" in ready.checks) ? <li class="muted">redis: not configured (per-instance limits)</li> : null}
          </ul>
        </div>
        <div class="card">
          <h2>Feature flags</h2>
          <ul class="plain flags">
            {Object.entries(health?.features ?? {}).map(([flag, on]) => (
              <li key={flag}>
                {flag} <Badge value={on ? "on" : "off"} />
              </li>
            ))}
          </ul>
        </div>
        <div class="card">
          <h2>Chaos</h2>
          <p class="big">{health ? (health.chaos.active ? "active" : "off") : "…"}</p>
          {health?.chaos.tools ? <pre class="small">{JSON.stringify(health.chaos.tools, null, 1)}</pre> : null}
        </div>
        <div class="card">
          <h2>Breakers</h2>
          <ul class="plain">
            {Object.keys(health?.breakers ?? {}).length === 0 ? <li class="muted">no tool called yet</li> : null}
            {Object.entries(health?.breakers ?? {}).map(([tool, state]) => (
              <li key={tool}>
                {tool} <Badge value={state} />
              </li>
            ))}
          </ul>
        </div>
        <div class="card">
          <h2>Approvals waiting</h2>
          <p class="big">{pending === undefined ? approvals.loading ? "…" : "—" : <a href="#/approvals">{pending}</a>}</p>
          {pending === undefined && !approvals.loading ? <p class="muted">not enabled on this gateway</p> : null}
        </div>
      </section>
      <section aria-label="live charts" class="charts">
        <h2 class="sr-only">Live charts</h2>
        {tools.length === 0 ? (
          <p class="muted">No tool calls in the last {Math.round((POINTS * POLL_MS) / 60000)} minutes: charts appear with the first calls.</p>
        ) : null}
        <LineChart
          title="Calls per second"
          unit="calls/s"
          times={history.times}
          windowSeconds={(POINTS * POLL_MS) / 1000}
          series={seriesOf((r) => r.callsPerSecond)}
        />
        <LineChart
          title="Errors (5xx share)"
          unit="%"
          times={history.times}
          windowSeconds={(POINTS * POLL_MS) / 1000}
          series={seriesOf((r) => r.errorPercent)}
        />
        <LineChart
          title="p50 latency in the gateway"
          unit="ms"
          times={history.times}
          windowSeconds={(POINTS * POLL_MS) / 1000}
          series={seriesOf((r) => r.p50Ms)}
        />
        <LineChart
          title="p99 latency in the gateway"
          unit="ms"
          times={history.times}
          windowSeconds={(POINTS * POLL_MS) / 1000}
          series={seriesOf((r) => r.p99Ms)}
        />
      </section>
    </>
  );
}
