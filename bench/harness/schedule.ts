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
 * Send times (seconds from start) for the whole schedule: the k-th request goes when the integral
 * of the target rate reaches k. Requests are due whether or not earlier ones have returned.
 */
export function* arrivals(stages: readonly Stage[], stepS = 0.0005): Generator<number> {
  const end = totalDurationS(stages);
  let due = 0;
  for (let t = 0; t < end; t += stepS) {
    due += targetRate(stages, t) * stepS;
    while (due >= 1) {
      due -= 1;
      yield t;
    }
  }
}

/** Expected number of requests: the area under the rate curve. */
export function expectedRequests(stages: readonly Stage[]): number {
  return stages.reduce((s, st) => s + ((st.fromRps + st.toRps) / 2) * st.durationS, 0);
}
