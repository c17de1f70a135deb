import { performance } from "node:perf_hooks";
import hdr from "hdr-histogram-js";
import { Pool } from "undici";
import { arrivals, targetRate, type Stage, totalDurationS } from "./schedule.js";
import type { PlannedRequest } from "./traffic.js";

/** One request as measured. Times in ms; `t` is the scheduled send time in seconds from the start. */
export interface Sample {
  t: number;
  kind: string;
  tool: string;
  expect: "allow" | "deny";
  duplicate: boolean;
  status: number;
  code?: string;
  /** From the scheduled send time: a stalled gateway cannot hide behind a slow sender. */
  e2eMs: number;
  /** How late the generator sent it. */
  lagMs: number;
  overheadMs?: number;
  upstreamMs?: number;
  cache?: string;
  attempts?: number;
  replayed?: boolean;
  /** A stored credential appeared in the answer. */
  leaked?: boolean;
}

export interface LoadResult {
  samples: Sample[];
  startedAt: number;
  durationS: number;
  generatorLagP99Ms: number;
  generatorLagMaxMs: number;
}

const newHistogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

function parseServerTiming(header: string | string[] | undefined): { gateway?: number; upstream?: number } {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  const out: { gateway?: number; upstream?: number } = {};
  for (const m of text.matchAll(/(gateway|upstream);dur=([\d.]+)/g)) out[m[1] as "gateway" | "upstream"] = Number(m[2]);
  return out;
}

/**
 * Open-model load: requests leave at their scheduled times whether or not earlier ones returned,
 * and latency is measured from the scheduled time (no coordinated omission).
 */
export async function runLoad(o: {
  target: string;
  stages: Stage[];
  next: () => Promise<PlannedRequest>;
  secrets?: string[];
  progress?: boolean;
  label?: string;
  /** Called when the run reaches these fractions of its length (chaos on/off). */
  at?: { fraction: number; run: () => Promise<void> }[];
  connections?: number;
}): Promise<LoadResult> {
  const pool = new Pool(o.target, { connections: o.connections ?? 256, pipelining: 1, keepAliveTimeout: 30_000 });
  const samples: Sample[] = [];
  const lag = newHistogram();
  const window = newHistogram();
  let windowErrors = 0;
  let windowDone = 0;
  let inFlight = 0;
  const total = totalDurationS(o.stages);
  const start = performance.now();
  const startedAt = Date.now();
  const pending = new Set<Promise<void>>();
  const hooks = [...(o.at ?? [])].sort((a, b) => a.fraction - b.fraction);

  const progress = o.progress
    ? setInterval(() => {
        const el = (performance.now() - start) / 1000;
        const p99 = windowDone > 0 ? window.getValueAtPercentile(99) / 1000 : 0;
        process.stderr.write(`[${o.label ?? "run"} ${el.toFixed(0).padStart(5)}s/${total.toFixed(0)}s] target ${targetRate(o.stages, el).toFixed(1)} rps | achieved ${windowDone.toFixed(0)} rps | p99 ${p99.toFixed(1)} ms | errors ${windowErrors} | in flight ${inFlight}\n`);
        window.reset();
        windowErrors = 0;
        windowDone = 0;
      }, 1000)
    : undefined;

  async function send(scheduledS: number, planned: PlannedRequest) {
    const scheduled = start + scheduledS * 1000;
    const sentAt = performance.now();
    const lagMs = Math.max(0, sentAt - scheduled);
    lag.recordValue(Math.round(lagMs * 1000) + 1);
    inFlight++;
    const sample: Sample = { t: scheduledS, kind: planned.kind, tool: planned.tool, expect: planned.expect, duplicate: planned.duplicate, status: 0, e2eMs: 0, lagMs };
    try {
      const response = await pool.request({
        path: "/api/proxy",
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${planned.token}`, ...planned.headers },
        body: JSON.stringify({ tool: planned.tool, action: planned.action, params: planned.params }),
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      const text = await response.body.text();
      sample.status = response.statusCode;
      const timing = parseServerTiming(response.headers["server-timing"]);
      if (timing.gateway !== undefined) sample.overheadMs = timing.gateway;
      if (timing.upstream !== undefined) sample.upstreamMs = timing.upstream;
      try {
        const body = JSON.parse(text) as { meta?: { cache?: string; attempts?: number; replayed?: boolean }; error?: { code?: string; details?: { attempts?: number } } };
        if (body.meta?.cache !== undefined) sample.cache = body.meta.cache;
        if (body.meta?.attempts !== undefined) sample.attempts = body.meta.attempts;
        if (body.meta?.replayed) sample.replayed = true;
        if (body.error?.code !== undefined) sample.code = body.error.code;
        if (body.error?.details?.attempts !== undefined) sample.attempts = body.error.details.attempts;
      } catch {
        sample.code = "unparseable_response";
      }
      if (o.secrets?.some((s) => text.includes(s))) sample.leaked = true;
    } catch (err) {
      sample.status = 0;
      sample.code = `client_${(err as { code?: string }).code ?? "error"}`;
    } finally {
      inFlight--;
      const done = performance.now();
      // From the scheduled time; a request sent a hair early is timed from when it actually left.
      sample.e2eMs = done - Math.min(scheduled, sentAt);
      window.recordValue(Math.round(sample.e2eMs * 1000) + 1);
      windowDone++;
      if (sample.expect === "allow" && (sample.status < 200 || sample.status >= 300)) windowErrors++;
      samples.push(sample);
    }
  }

  let hookIndex = 0;
  for (const dueS of arrivals(o.stages)) {
    while (hookIndex < hooks.length && dueS >= hooks[hookIndex]!.fraction * total) await hooks[hookIndex++]!.run();
    const wait = start + dueS * 1000 - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const planned = await o.next();
    const p = send(dueS, planned);
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }
  while (hookIndex < hooks.length) await hooks[hookIndex++]!.run();
  const tail = start + total * 1000 - performance.now();
  if (tail > 0) await new Promise((r) => setTimeout(r, tail));
  await Promise.allSettled([...pending]);
  if (progress) clearInterval(progress);
  await pool.close();
  samples.sort((a, b) => a.t - b.t);
  return {
    samples,
    startedAt,
    durationS: (performance.now() - start) / 1000,
    generatorLagP99Ms: lag.totalCount > 0 ? (lag.getValueAtPercentile(99) - 1) / 1000 : 0,
    generatorLagMaxMs: lag.totalCount > 0 ? (lag.maxValue - 1) / 1000 : 0,
  };
}
