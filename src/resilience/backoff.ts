/** Exponential backoff with full jitter: a random delay in [0, min(max, base · 2^(retry-1))). */
export function backoffDelayMs(retry: number, options: { baseMs: number; maxMs: number }, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Retries spend at most `ratio` of recent requests (per tool), with a small floor so quiet tools can
 * still retry: a failing upstream gets a trickle of extra load, never a multiple of it.
 */
export class RetryBudget {
  private readonly windows = new Map<string, { start: number; requests: number; retries: number }[]>();

  constructor(private readonly o: { ratio: number; minRetries: number; windowMs: number }) {}

  private slots(key: string, now: number) {
    let ring = this.windows.get(key);
    if (ring === undefined) {
      ring = Array.from({ length: 10 }, () => ({ start: -1, requests: 0, retries: 0 }));
      this.windows.set(key, ring);
    }
    const width = this.o.windowMs / 10;
    const start = Math.floor(now / width) * width;
    const slot = ring[Math.floor(now / width) % 10]!;
    if (slot.start !== start) Object.assign(slot, { start, requests: 0, retries: 0 });
    return { ring, slot };
  }

  request(key: string, now: number): void {
    this.slots(key, now).slot.requests++;
  }

  /** Takes one retry from the budget if there is one. */
  tryRetry(key: string, now: number): boolean {
    const { ring, slot } = this.slots(key, now);
    let requests = 0;
    let retries = 0;
    for (const s of ring) {
      if (s.start >= 0 && now - s.start < this.o.windowMs) {
        requests += s.requests;
        retries += s.retries;
      }
    }
    if (retries >= Math.max(this.o.minRetries, this.o.ratio * requests)) return false;
    slot.retries++;
    return true;
  }
}
