import type { Results, RunData } from "./compute.js";

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const COLORS = ["#2563eb", "#f59e0b", "#dc2626", "#16a34a", "#7c3aed"];

/** A small inline-SVG line chart: no library, no network. */
export function lineChart(title: string, unit: string, series: { name: string; points: [number, number][] }[]): string {
  const W = 760;
  const H = 240;
  const pad = { l: 56, r: 16, t: 28, b: 32 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  if (xs.length === 0) return `<figure><figcaption>${esc(title)}: no data</figcaption></figure>`;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1e-9) * 1.1;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number) => H - pad.b - (y / y1) * (H - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (f) =>
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${sy(f * y1)}" y2="${sy(f * y1)}" stroke="#e5e7eb"/><text x="${pad.l - 6}" y="${sy(f * y1) + 4}" text-anchor="end" font-size="10">${(f * y1).toFixed(y1 < 10 ? 2 : 0)}</text>`,
    )
    .join("");
  const lines = series
    .map(
      (s, i) =>
        `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.8" points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`,
    )
    .join("");
  const legend = series.map((s, i) => `<tspan fill="${COLORS[i % COLORS.length]}">■ ${esc(s.name)}</tspan>`).join("  ");
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><text x="${pad.l}" y="16" font-size="13" font-weight="bold">${esc(title)} (${esc(unit)})</text><text x="${W - pad.r}" y="16" text-anchor="end" font-size="11">${legend}</text>${ticks}${lines}<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="10">seconds from start (${x0.toFixed(0)}–${x1.toFixed(0)})</text></svg></figure>`;
}

function breakerChart(r: Results, durationS: number): string {
  const tools = ["serpapi", "http_fetch", "openai"];
  const W = 760;
  const rowH = 26;
  const H = 40 + tools.length * rowH;
  const sx = (t: number) => 100 + (t / Math.max(1, durationS)) * (W - 116);
  const rows = tools
    .map((tool, i) => {
      const y = 28 + i * rowH;
      const bars = r.breakers[tool]!.intervals.map(
        (iv) => `<rect x="${sx(iv.from)}" y="${y}" width="${Math.max(2, sx(iv.to) - sx(iv.from))}" height="${rowH - 8}" fill="#dc2626"/>`,
      ).join("");
      return `<text x="8" y="${y + 13}" font-size="11">${tool}</text><rect x="100" y="${y}" width="${W - 116}" height="${rowH - 8}" fill="#dcfce7"/>${bars}`;
    })
    .join("");
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Breaker state timeline"><text x="8" y="16" font-size="13" font-weight="bold">Breaker state timeline (green closed, red open or half-open)</text>${rows}</svg></figure>`;
}

export function renderHtml(d: RunData, r: Results, markdown: string): string {
  const w = r.series.windows;
  const tl = r.series.timeline;
  const charts = [
    lineChart("Latency percentiles over time (end to end, successful calls)", "ms", [
      { name: "p50", points: w.map((x) => [x.t, x.p50]) },
      { name: "p95", points: w.map((x) => [x.t, x.p95]) },
      { name: "p99", points: w.map((x) => [x.t, x.p99]) },
    ]),
    lineChart("Achieved vs target RPS", "requests/s", [
      { name: "target", points: w.map((x) => [x.t, x.target]) },
      { name: "achieved", points: w.map((x) => [x.t, x.achieved]) },
      { name: "failed calls / window", points: w.map((x) => [x.t, x.errors]) },
    ]),
    breakerChart(r, d.run.durationS),
    lineChart("Gateway memory", "MB", [
      { name: "RSS", points: tl.filter((p) => p.rssBytes !== undefined).map((p) => [p.t, p.rssBytes! / 1_048_576]) },
      { name: "V8 heap used", points: tl.filter((p) => p.heapBytes !== undefined).map((p) => [p.t, p.heapBytes! / 1_048_576]) },
    ]),
    lineChart("Event-loop lag (p99 per sampling interval)", "ms", [
      { name: "lag p99", points: tl.filter((p) => p.lagP99Ms !== undefined).map((p) => [p.t, p.lagP99Ms!]) },
    ]),
  ];
  const checks = r.checks
    .map((c) => `<tr><td>${esc(c.name)}</td><td>${esc(c.value)}</td><td>${esc(c.target)}</td><td>${c.met === undefined ? "➖" : c.met ? "✅" : "❌"}</td></tr>`)
    .join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>4Runr Gateway — ${esc(d.run.scenario)} report</title>
<style>body{font-family:system-ui,sans-serif;max-width:820px;margin:2em auto;color:#111}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px}pre{white-space:pre-wrap;background:#f8fafc;padding:1em;border:1px solid #e5e7eb}</style></head>
<body><h1>4Runr Gateway — ${esc(d.run.scenario)} (${esc(r.verdict)})</h1>
<table><tr><th>Check</th><th>Measured</th><th>Target</th><th></th></tr>${checks}</table>
<h2>Charts</h2>${charts.join("\n")}
<h2>Full report</h2><pre>${esc(markdown)}</pre></body></html>`;
}
