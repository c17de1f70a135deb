import { GatewayError } from "../errors/index.js";

interface Record<V> {
  fingerprint: string;
  expiresAt: number;
  /** Pending while the first call runs; later repeats wait on it. */
  pending?: Promise<V>;
  result?: V;
}

/**
 * Idempotency keys for side-effecting calls. A repeat with the same key and the same parameters
 * gets the first result without another upstream call (waiting for it if it is still running);
 * the same key with different parameters is a conflict. A first call that failed does not pin its
 * key, so the client may retry with it. Keys expire; the store is bounded.
 */
export class IdempotencyStore<V> {
  private readonly records = new Map<string, Record<V>>();

  constructor(private readonly o: { ttlMs: number; maxKeys: number }) {}

  async run(key: string, fingerprint: string, now: number, work: () => Promise<V>): Promise<{ value: V; replayed: boolean }> {
    const existing = this.records.get(key);
    if (existing !== undefined && existing.expiresAt > now) {
      if (existing.fingerprint !== fingerprint) {
        throw new GatewayError("idempotency_conflict", "this Idempotency-Key was already used with different parameters; use a new key for a different call");
      }
      if (existing.result !== undefined) return { value: existing.result, replayed: true };
      if (existing.pending !== undefined) return { value: await existing.pending, replayed: true };
    }
    const record: Record<V> = { fingerprint, expiresAt: now + this.o.ttlMs };
    record.pending = work();
    this.records.set(key, record);
    this.evict(now);
    try {
      record.result = await record.pending;
      return { value: record.result, replayed: false };
    } catch (err) {
      if (this.records.get(key) === record) this.records.delete(key);
      throw err;
    } finally {
      delete record.pending;
    }
  }

  private evict(now: number): void {
    if (this.records.size <= this.o.maxKeys) return;
    for (const [key, r] of this.records) {
      if (r.expiresAt <= now) this.records.delete(key);
    }
    // Still full: drop the oldest finished ones (insertion order).
    for (const [key, r] of this.records) {
      if (this.records.size <= this.o.maxKeys) break;
      if (r.pending === undefined) this.records.delete(key);
    }
  }

  get size(): number {
    return this.records.size;
  }
}
