/** Open-model arrival schedules: target rate over time, ramped linearly between stage endpoints. Pure. */

export interface Stage {
  /** Seconds (already scaled). */
  durationS: number;
  fromRps: number;
  toRps: number;
  label?: string;
}

export function totalDurationS(stages: readonly Stage[]): number {
  return stages.reduce((s, st) => s + st.durationS, 0);
}

/** Target rate at `tS` seconds from the start. */
export function targetRate(stages: readonly Stage[], tS: number): number {
  let start = 0;
  for (const st of stages) {
    if (tS < start + st.durationS) return st.fromRps + ((st.toRps - st.fromRps) * (tS - start)) / st.durationS;
    start += st.durationS;
  }
  return 0;
}

export function stageAt(stages: readonly Stage[], tS: number): number {
  let start = 0;
  for (const [i, st] of stages.entries()) {
    if (tS < start + st.durationS) return i;
    start += st.durationS;
  }
  return stages.length - 1;
}

/**
 * Send times (seconds from start) for the whole schedule: the k-th request (k = 1, 2, …) is due at the
 * exact moment the integral of the target rate reaches k. Requests are due whether or not earlier ones
 * have returned. Within a stage the rate is a + (b − a)·t/D, so the integral is a·t + c·t² with
 * c = (b − a)/2D, and the k-th arrival solves that quadratic (in its cancellation-free form).
 */
export function* arrivals(stages: readonly Stage[]): Generator<number> {
  let stageStart = 0;
  let countBefore = 0; // requests due before this stage (fractional)
  let k = 1;
  for (const st of stages) {
    const a = st.fromRps;
    const c = st.durationS > 0 ? (st.toRps - st.fromRps) / (2 * st.durationS) : 0;
    const inStage = ((st.fromRps + st.toRps) / 2) * st.durationS;
    while (k <= countBefore + inStage + 1e-9) {
      const need = k - countBefore;
      const disc = a * a + 4 * c * need;
      const denom = a + Math.sqrt(Math.max(0, disc));
      if (disc < 0 || denom <= 0) break;
      const t = Math.min(st.durationS, (2 * need) / denom);
      yield stageStart + t;
      k++;
    }
    countBefore += inStage;
    stageStart += st.durationS;
  }
}

/** Expected number of requests: the area under the rate curve. */
export function expectedRequests(stages: readonly Stage[]): number {
  return stages.reduce((s, st) => s + ((st.fromRps + st.toRps) / 2) * st.durationS, 0);
}

/** Time source of the dispatcher: real in runs, virtual in tests (no wall-clock assertions). */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** Something to do once the run reaches a fraction of its length (chaos on, chaos off). */
export interface ScheduleHook {
  fraction: number;
  run: () => Promise<void>;
}

/**
 * Walks the arrival schedule against `clock`: sleeps until each request is due, then calls `fire`
 * with its scheduled time (ms from start) and how late it is. `fire` must start the request and
 * return without waiting for its answer (open model); `prepare` (e.g. fetching a token) is awaited,
 * so a slow preparation shows up as lag instead of silently thinning the load.
 */
export async function dispatch<T>(o: {
  stages: readonly Stage[];
  clock: Clock;
  prepare: () => Promise<T> | T;
  fire: (item: T, scheduledMs: number, lagMs: number) => void;
  hooks?: readonly ScheduleHook[];
  /** Ms timestamp (clock.now()) of the start; defaults to the clock's now at the call. */
  startMs?: number;
}): Promise<{ startMs: number; sent: number }> {
  const start = o.startMs ?? o.clock.now();
  const total = totalDurationS(o.stages);
  const hooks = [...(o.hooks ?? [])].sort((a, b) => a.fraction - b.fraction);
  let hookIndex = 0;
  let sent = 0;
  for (const dueS of arrivals(o.stages)) {
    while (hookIndex < hooks.length && dueS >= hooks[hookIndex]!.fraction * total) {
      const hookWait = start + hooks[hookIndex]!.fraction * total * 1000 - o.clock.now();
      if (hookWait > 0.5) await o.clock.sleep(hookWait);
      await hooks[hookIndex++]!.run();
    }
    const dueMs = dueS * 1000;
    const wait = start + dueMs - o.clock.now();
    if (wait > 0.5) await o.clock.sleep(wait);
    const item = await o.prepare();
    const lagMs = Math.max(0, o.clock.now() - (start + dueMs));
    o.fire(item, dueMs, lagMs);
    sent++;
  }
  while (hookIndex < hooks.length) {
    const hookWait = start + hooks[hookIndex]!.fraction * total * 1000 - o.clock.now();
    if (hookWait > 0.5) await o.clock.sleep(hookWait);
    await hooks[hookIndex++]!.run();
  }
  const tail = start + total * 1000 - o.clock.now();
  if (tail > 0) await o.clock.sleep(tail);
  return { startMs: start, sent };
}
