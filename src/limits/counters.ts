import type { LimitCheck } from "../policy/types.js";

export type LimitOutcome = { ok: true } | { ok: false; index: number; retryAfterSeconds: number };

/**
 * The state behind quotas and rate limits. `consume` is all-or-nothing: if every check fits, one
 * unit is taken from each; if any does not, nothing is taken (so a call refused by one limit never
 * uses up another). Backends: in-process (one instance) and Redis (shared by every instance).
 */
export interface Counters {
  readonly kind: "memory" | "redis";
  consume(checks: readonly LimitCheck[], now: number): Promise<LimitOutcome>;
  /** Gives back one call of each quota check (its upstream failed and failures do not count); token budgets took nothing to give back. */
  refund(checks: readonly LimitCheck[], now: number): Promise<void>;
  /** Counts `amount` model tokens against each token-budget check (after the answer reported its usage). */
  addUsage(checks: readonly LimitCheck[], amount: number, now: number): Promise<void>;
  /** Units left in each check, without taking any (for explain). */
  peek(checks: readonly LimitCheck[], now: number): Promise<number[]>;
  close(): Promise<void>;
}

interface Bucket {
  tokens: number;
  at: number;
  /** When it will have refilled to its burst: from then on it is the same as no bucket at all. */
  fullAt: number;
}
interface Count {
  count: number;
  expiresAt: number;
}

export const refill = (bucket: Bucket | undefined, check: LimitCheck, now: number): number =>
  bucket === undefined ? check.limit : Math.min(check.limit, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * (check.perSecond ?? 1));

/** In-process counters: exact for one instance; atomic because the event loop runs one call at a time. */
export class MemoryCounters implements Counters {
  readonly kind = "memory";
  private readonly buckets = new Map<string, Bucket>();
  private readonly counts = new Map<string, Count>();

  constructor(private readonly maxEntries = 1_000_000) {}

  async consume(checks: readonly LimitCheck[], now: number): Promise<LimitOutcome> {
    return this.consumeSync(checks, now);
  }

  consumeSync(checks: readonly LimitCheck[], now: number): LimitOutcome {
    const levels: number[] = [];
    for (const [index, check] of checks.entries()) {
      if (check.kind === "quota") {
        const c = this.counts.get(check.key);
        const used = c === undefined || c.expiresAt <= now ? 0 : c.count;
        if (used >= check.limit) return { ok: false, index, retryAfterSeconds: Math.max(1, Math.ceil(((check.windowEndMs ?? now + 1000) - now) / 1000)) };
        levels.push(used);
      } else {
        const tokens = refill(this.buckets.get(check.key), check, now);
        if (tokens < 1) return { ok: false, index, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / (check.perSecond ?? 1))) };
        levels.push(tokens);
      }
    }
    if (this.counts.size + this.buckets.size > this.maxEntries) this.sweep(now);
    checks.forEach((check, i) => {
      // A token budget is only checked on the way in: its tokens are counted when the answer says how many.
      if (check.kind === "quota")
        this.counts.set(check.key, { count: levels[i]! + (check.unit === "tokens" ? 0 : 1), expiresAt: check.windowEndMs ?? now + 86_400_000 });
      else {
        const tokens = levels[i]! - 1;
        this.buckets.set(check.key, { tokens, at: now, fullAt: now + ((check.limit - tokens) / (check.perSecond ?? 1)) * 1000 });
      }
    });
    return { ok: true };
  }

  async refund(checks: readonly LimitCheck[], now: number): Promise<void> {
    for (const check of checks) {
      if (check.kind !== "quota" || check.unit === "tokens") continue;
      const c = this.counts.get(check.key);
      if (c !== undefined && c.expiresAt > now && c.count > 0) c.count -= 1;
    }
  }

  async addUsage(checks: readonly LimitCheck[], amount: number, now: number): Promise<void> {
    for (const check of checks) {
      if (check.kind !== "quota" || check.unit !== "tokens" || !(amount > 0)) continue;
      const c = this.counts.get(check.key);
      if (c === undefined || c.expiresAt <= now) this.counts.set(check.key, { count: amount, expiresAt: check.windowEndMs ?? now + 86_400_000 });
      else c.count += amount;
    }
  }

  async peek(checks: readonly LimitCheck[], now: number): Promise<number[]> {
    return checks.map((check) => {
      if (check.kind === "quota") {
        const c = this.counts.get(check.key);
        return check.limit - (c === undefined || c.expiresAt <= now ? 0 : c.count);
      }
      return Math.floor(refill(this.buckets.get(check.key), check, now));
    });
  }

  /** How many windows and buckets are held (for tests and capacity checks). */
  size(): number {
    return this.counts.size + this.buckets.size;
  }

  /**
   * Drops expired windows and refilled buckets (they hold no information). Keys chosen by callers
   * (agent ids before authentication) then cost memory only while they are being limited.
   */
  private sweep(now: number): void {
    for (const [key, c] of this.counts) if (c.expiresAt <= now) this.counts.delete(key);
    for (const [key, b] of this.buckets) if (b.fullAt <= now) this.buckets.delete(key);
  }

  async close(): Promise<void> {}
}
