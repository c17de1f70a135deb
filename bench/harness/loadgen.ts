import hdr from "hdr-histogram-js";
import { Pool } from "undici";
import { dispatch, realClock, targetRate, totalDurationS, type Clock, type ScheduleHook, type Stage } from "./schedule.js";
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

export function parseServerTiming(header: string | string[] | undefined): { gateway?: number; upstream?: number } {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  const out: { gateway?: number; upstream?: number } = {};
  for (const m of text.matchAll(/(gateway|upstream);dur=([\d.]+)/g)) out[m[1] as "gateway" | "upstream"] = Number(m[2]);
  return out;
}

/** What one HTTP exchange returned; the loadgen needs no more than this. */
export interface Exchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Sends one planned call. The real one is an undici Pool (keep-alive); tests pass fakes. */
export interface Transport {
  send(planned: PlannedRequest): Promise<Exchange>;
  close(): Promise<void>;
}

/** An undici Pool with enough keep-alive connections that the client never queues behind itself. */
export function poolTransport(target: string, connections = 256): Transport {
  const pool = new Pool(target, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  return {
    async send(planned) {
      const response = await pool.request({
        path: "/api/proxy",
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${planned.token}`, ...planned.headers },
        body: JSON.stringify({ tool: planned.tool, action: planned.action, params: planned.params }),
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
    },
    close: () => pool.close(),
  };
}

/** Fills a sample from the answer: status, Server-Timing, meta, error code, leaked secrets. Pure. */
export function readExchange(sample: Sample, ex: Exchange, secrets: readonly string[] = []): void {
  sample.status = ex.status;
  const timing = parseServerTiming(ex.headers["server-timing"]);
  if (timing.gateway !== undefined) sample.overheadMs = timing.gateway;
  if (timing.upstream !== undefined) sample.upstreamMs = timing.upstream;
  try {
    const body = JSON.parse(ex.text) as {
      meta?: { cache?: string; attempts?: number; replayed?: boolean };
      error?: { code?: string; details?: { attempts?: number } };
    };
    if (body.meta?.cache !== undefined) sample.cache = body.meta.cache;
    if (body.meta?.attempts !== undefined) sample.attempts = body.meta.attempts;
    if (body.meta?.replayed) sample.replayed = true;
    if (body.error?.code !== undefined) sample.code = body.error.code;
    if (body.error?.details?.attempts !== undefined) sample.attempts = body.error.details.attempts;
  } catch {
    sample.code = "unparseable_response";
  }
  if (secrets.some((s) => ex.text.includes(s))) sample.leaked = true;
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
  at?: ScheduleHook[];
  connections?: number;
  clock?: Clock;
  transport?: Transport;
}): Promise<LoadResult> {
  const clock = o.clock ?? realClock;
  const transport = o.transport ?? poolTransport(o.target, o.connections);
  const samples: Sample[] = [];
  const lag = newHistogram();
  const window = newHistogram();
  let windowErrors = 0;
  let windowDone = 0;
  let inFlight = 0;
  const total = totalDurationS(o.stages);
  const start = clock.now();
  const startedAt = Date.now();
  const pending = new Set<Promise<void>>();

  const progress = o.progress
    ? setInterval(() => {
        const el = (clock.now() - start) / 1000;
        const p99 = windowDone > 0 ? window.getValueAtPercentile(99) / 1000 : 0;
        process.stderr.write(
          `[${o.label ?? "run"} ${el.toFixed(0).padStart(5)}s/${total.toFixed(0)}s] target ${targetRate(o.stages, el).toFixed(1)} rps | achieved ${windowDone.toFixed(0)} rps | p99 ${p99.toFixed(1)} ms | errors ${windowErrors} | in flight ${inFlight}\n`,
        );
        window.reset();
        windowErrors = 0;
        windowDone = 0;
      }, 1000)
    : undefined;

  async function send(planned: PlannedRequest, scheduledMs: number, lagMs: number) {
    const scheduled = start + scheduledMs;
    const sentAt = clock.now();
    lag.recordValue(Math.round(lagMs * 1000) + 1);
    inFlight++;
    const sample: Sample = {
      t: scheduledMs / 1000,
      kind: planned.kind,
      tool: planned.tool,
      expect: planned.expect,
      duplicate: planned.duplicate,
      status: 0,
      e2eMs: 0,
      lagMs,
    };
    try {
      readExchange(sample, await transport.send(planned), o.secrets);
    } catch (err) {
      sample.status = 0;
      sample.code = `client_${(err as { code?: string }).code ?? "error"}`;
    } finally {
      inFlight--;
      // From the scheduled time: a stalled gateway (or a late generator) cannot hide behind a slow sender.
      // A request sent a hair early (timer granularity) is timed from when it actually left.
      sample.e2eMs = clock.now() - Math.min(scheduled, sentAt);
      window.recordValue(Math.max(1, Math.round(sample.e2eMs * 1000) + 1));
      windowDone++;
      if (sample.expect === "allow" && (sample.status < 200 || sample.status >= 300)) windowErrors++;
      samples.push(sample);
    }
  }

  try {
    await dispatch({
      stages: o.stages,
      clock,
      startMs: start,
      hooks: o.at ?? [],
      prepare: o.next,
      fire: (planned, scheduledMs, lagMs) => {
        const p = send(planned, scheduledMs, lagMs);
        pending.add(p);
        void p.finally(() => pending.delete(p));
      },
    });
    await Promise.allSettled([...pending]);
  } finally {
    if (progress) clearInterval(progress);
    if (o.transport === undefined) await transport.close();
  }
  samples.sort((a, b) => a.t - b.t);
  return {
    samples,
    startedAt,
    durationS: (clock.now() - start) / 1000,
    generatorLagP99Ms: lag.totalCount > 0 ? (lag.getValueAtPercentile(99) - 1) / 1000 : 0,
    generatorLagMaxMs: lag.totalCount > 0 ? (lag.maxValue - 1) / 1000 : 0,
  };
}
