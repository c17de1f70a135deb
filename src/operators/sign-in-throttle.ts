/**
 * Slows down key guessing at the console's sign-in: after `maxFailures` wrong keys from one address
 * within `windowMs`, that address is refused (even with the right key, so a guess learns nothing)
 * until the window has passed since its first failure. Per instance and in memory: a scaled-out
 * gateway multiplies the budget by its instance count, which still keeps guessing hopeless against
 * 256-bit operator keys; its job is to make a weak bootstrap admin key expensive to guess.
 */
export class SignInThrottle {
  private readonly failures = new Map<string, { first: number; count: number }>();

  constructor(private readonly o: { now: () => number; maxFailures?: number; windowMs?: number; maxAddresses?: number }) {}

  private get maxFailures() {
    return this.o.maxFailures ?? 10;
  }
  private get windowMs() {
    return this.o.windowMs ?? 5 * 60_000;
  }

  /** Seconds until `address` may try again, or 0 when it may try now. */
  retryAfterSeconds(address: string): number {
    const entry = this.failures.get(address);
    if (entry === undefined) return 0;
    const left = entry.first + this.windowMs - this.o.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return entry.count >= this.maxFailures ? Math.ceil(left / 1000) : 0;
  }

  failed(address: string): void {
    this.retryAfterSeconds(address); // forgets an entry whose window has passed
    const entry = this.failures.get(address);
    if (entry !== undefined) entry.count++;
    else {
      // Bounded: under a flood of addresses the oldest entries go first.
      if (this.failures.size >= (this.o.maxAddresses ?? 10_000)) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(address, { first: this.o.now(), count: 1 });
    }
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}
