import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777"];

/** A small live line chart: x is time (seconds), one line per series. */
export function LineChart({
  title,
  unit,
  times,
  windowSeconds,
  series,
}: {
  title: string;
  unit: string;
  times: number[];
  windowSeconds: number;
  series: { label: string; values: (number | null)[] }[];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join("|");

  useEffect(() => {
    if (!box.current) return;
    const width = () => Math.max(240, (box.current?.clientWidth ?? 400) - 8);
    const opts: uPlot.Options = {
      width: width(),
      height: 180,
      legend: { show: true, live: false },
      // The x axis spans what has been sampled (at least 30 s, at most the window), ending at the latest sample.
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            const end = max ?? Date.now() / 1000;
            return [Math.min(end - 30, Math.max(min ?? end, end - windowSeconds)), end];
          },
        },
        y: { range: (_u, min, max) => [0, Math.max(max ?? 1, min ?? 0, unit === "%" ? 5 : 1) * 1.1] },
      },
      axes: [{ values: (_u, splits) => splits.map((t) => clock.format(new Date(t * 1000))) }, { label: unit, size: 50 }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length]!, width: 2, spanGaps: false }))],
    };
    const u = new uPlot(opts, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, box.current);
    plot.current = u;
    const observer = new ResizeObserver(() => u.setSize({ width: width(), height: 180 }));
    observer.observe(box.current);
    return () => {
      observer.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of series changes; data updates go through setData below.
  }, [shape, unit]);

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)] as uPlot.AlignedData);
  });

  return (
    <figure class="chart" data-samples={times.length}>
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}: ${series.map((s) => `${s.label} ${fmt(s.values.at(-1))} ${unit}`).join(", ") || "no calls yet"}`} />
    </figure>
  );
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? "—" : v < 10 ? v.toFixed(2) : v.toFixed(0));
