/** Circuit breaker: a pure state machine over an injected clock. One per tool. */

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerOptions {
  /** Sliding window over which the failure rate is measured. */
  windowMs: number;
  /** Calls needed in the window before the rate can open the breaker. */
  minCalls: number;
  /** Failure rate (0..1) at or above which the breaker opens. */
  failureRate: number;
  /** How long it stays open before letting probes through. */
  coolDownMs: number;
  /** Probes allowed at once while half-open; all must succeed to close. */
  halfOpenProbes: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { windowMs: 10_000, minCalls: 10, failureRate: 0.5, coolDownMs: 5_000, halfOpenProbes: 3 };

const BUCKETS = 10;

export type Admission = { allowed: true; probe: boolean } | { allowed: false; retryAfterMs: number };

export class CircuitBreaker {
  private state: BreakerState = "closed";
  private openedAt = 0;
  private probesInFlight = 0;
  private probeSuccesses = 0;
  /** Ring of [bucketStart, calls, failures], bucket width windowMs / BUCKETS. */
  private readonly buckets: { start: number; calls: number; failures: number }[] = Array.from({ length: BUCKETS }, () => ({
    start: -1,
    calls: 0,
    failures: 0,
  }));

  constructor(
    private readonly options: BreakerOptions = DEFAULT_BREAKER,
    private readonly onTransition?: (from: BreakerState, to: BreakerState) => void,
  ) {}

  current(now: number): BreakerState {
    if (this.state === "open" && now - this.openedAt >= this.options.coolDownMs) this.move("half_open");
    return this.state;
  }

  /** Whether a call may go to the upstream now. */
  admit(now: number): Admission {
    const state = this.current(now);
    if (state === "closed") return { allowed: true, probe: false };
    if (state === "open") return { allowed: false, retryAfterMs: this.openedAt + this.options.coolDownMs - now };
    if (this.probesInFlight >= this.options.halfOpenProbes) return { allowed: false, retryAfterMs: Math.min(1000, this.options.coolDownMs) };
    this.probesInFlight++;
    return { allowed: true, probe: true };
  }

  /** Records an upstream outcome. `failure` means an upstream failure (timeout, connection, 5xx, 429). */
  record(now: number, failure: boolean, probe: boolean): void {
    if (probe) {
      this.probesInFlight = Math.max(0, this.probesInFlight - 1);
      if (this.state !== "half_open") return;
      if (failure) {
        this.trip(now);
        return;
      }
      if (++this.probeSuccesses >= this.options.halfOpenProbes) this.move("closed");
      return;
    }
    const bucket = this.bucketFor(now);
    bucket.calls++;
    if (failure) bucket.failures++;
    if (this.state !== "closed") return;
    const { calls, failures } = this.totals(now);
    if (calls >= this.options.minCalls && failures / calls >= this.options.failureRate) this.trip(now);
  }

  /** A probe that ended without an upstream verdict (e.g. the caller's bad input) frees its slot. */
  release(probe: boolean): void {
    if (probe) this.probesInFlight = Math.max(0, this.probesInFlight - 1);
  }

  stats(now: number): { state: BreakerState; calls: number; failures: number } {
    return { state: this.current(now), ...this.totals(now) };
  }

  private trip(now: number): void {
    this.openedAt = now;
    this.move("open");
  }

  private move(to: BreakerState): void {
    if (to === this.state) return;
    const from = this.state;
    this.state = to;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    if (to === "closed") for (const b of this.buckets) b.start = -1;
    this.onTransition?.(from, to);
  }

  private bucketFor(now: number) {
    const width = this.options.windowMs / BUCKETS;
    const start = Math.floor(now / width) * width;
    const bucket = this.buckets[Math.floor(now / width) % BUCKETS]!;
    if (bucket.start !== start) {
      bucket.start = start;
      bucket.calls = 0;
      bucket.failures = 0;
    }
    return bucket;
  }

  private totals(now: number): { calls: number; failures: number } {
    let calls = 0;
    let failures = 0;
    for (const b of this.buckets) {
      if (b.start >= 0 && now - b.start < this.options.windowMs) {
        calls += b.calls;
        failures += b.failures;
      }
    }
    return { calls, failures };
  }
}
