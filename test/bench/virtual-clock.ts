import type { Clock } from "../../bench/harness/schedule.js";

/**
 * Discrete-event time for the dispatcher and load generator: `sleep` parks a timer, and `run` lets
 * every pending promise settle before jumping to the earliest timer. No wall clock involved.
 */
export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: { at: number; seq: number; resolve: () => void }[] = [];

  now = (): number => this.t;

  sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      this.timers.push({ at: this.t + Math.max(0, ms), seq: this.seq++, resolve });
    });

  /** Drives virtual time until `work` settles; fails if it waits on something that is not a timer. */
  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    work.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (settled) return work;
      if (this.timers.length === 0) throw new Error("virtual clock: waiting on something other than a timer");
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers.shift()!;
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
  }
}
