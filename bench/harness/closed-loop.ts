import { randomBytes } from "node:crypto";
import { Pool } from "undici";
import { percentiles } from "./report/compute.js";

/**
 * Closed-loop load: each of `connections` workers sends its next serpapi search as soon as the
 * previous answer arrives, for `durationS`. Measures the most a target can serve at that concurrency.
 */
export async function closedLoop(o: { target: string; token: string; connections: number; durationS: number; cached: boolean }) {
  const pool = new Pool(o.target, { connections: o.connections, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let n = 0;
  const end = performance.now() + o.durationS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const q = o.cached ? `popular ${n++ % 10}` : `query ${n++} ${randomBytes(4).toString("hex")}`;
      const t0 = performance.now();
      try {
        const r = await pool.request({
          path: "/api/proxy",
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${o.token}` },
          body: JSON.stringify({ tool: "serpapi", action: "search", params: { q } }),
        });
        await r.body.text();
        if (r.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: o.connections }, worker));
  await pool.close();
  const p = percentiles(latencies);
  return { rps: latencies.length / o.durationS, p50: p.p50, p99: p.p99, mean: p.mean, errors, requests: latencies.length };
}
