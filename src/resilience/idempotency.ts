import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { connectRedis } from "../util/redis.js";
import type { SqlDriver } from "../store/sql-driver.js";

/**
 * What claiming an Idempotency-Key found:
 * - `claimed`: this caller runs the call and must `complete` or `release` with the lease;
 * - `in_flight`: another caller (maybe another instance) holds the key and has no result yet;
 * - `done`: the stored result of the first call, to replay;
 * - `conflict`: the key was used with different parameters.
 */
export type IdempotencyClaim<V> = { state: "claimed"; lease: string } | { state: "in_flight" } | { state: "done"; result: V } | { state: "conflict" };

/**
 * Idempotency keys, claimed atomically before a side-effecting call. The in-flight marker expires
 * after `inFlightTtlMs` (so a crashed holder does not pin the key); a completed key keeps its result
 * for `ttlMs`. A first call that failed releases its key: the client may retry with it.
 * Three backends run one contract suite: in-process (one instance), Redis and SQL (shared).
 */
export interface IdempotencyKeys<V> {
  readonly kind: "memory" | "redis" | "sql";
  claim(key: string, fingerprint: string, nowMs: number): Promise<IdempotencyClaim<V>>;
  complete(key: string, lease: string, result: V, nowMs: number): Promise<void>;
  release(key: string, lease: string): Promise<void>;
  close(): Promise<void>;
}

export interface IdempotencyTimes {
  /** How long a completed key replays its result. */
  ttlMs: number;
  /** How long an unfinished claim holds the key (longer than any call may run). */
  inFlightTtlMs: number;
}

interface StoredKey<V> {
  fingerprint: string;
  lease: string | null;
  result?: V;
  expiresAt: number;
}

function claimOf<V>(existing: StoredKey<V>, fingerprint: string): IdempotencyClaim<V> {
  if (existing.fingerprint !== fingerprint) return { state: "conflict" };
  return existing.result !== undefined ? { state: "done", result: existing.result } : { state: "in_flight" };
}

/** One process: a bounded Map (oldest finished keys go first when full). */
export class MemoryIdempotencyKeys<V> implements IdempotencyKeys<V> {
  readonly kind = "memory";
  private readonly keys = new Map<string, StoredKey<V>>();

  constructor(private readonly o: IdempotencyTimes & { maxKeys: number }) {}

  async claim(key: string, fingerprint: string, nowMs: number): Promise<IdempotencyClaim<V>> {
    const existing = this.keys.get(key);
    if (existing !== undefined && existing.expiresAt > nowMs) return claimOf(existing, fingerprint);
    const lease = randomUUID();
    this.keys.delete(key);
    this.keys.set(key, { fingerprint, lease, expiresAt: nowMs + this.o.inFlightTtlMs });
    this.evict(nowMs);
    return { state: "claimed", lease };
  }

  async complete(key: string, lease: string, result: V, nowMs: number): Promise<void> {
    const existing = this.keys.get(key);
    if (existing?.lease !== lease) return;
    this.keys.set(key, { fingerprint: existing.fingerprint, lease: null, result, expiresAt: nowMs + this.o.ttlMs });
  }

  async release(key: string, lease: string): Promise<void> {
    if (this.keys.get(key)?.lease === lease) this.keys.delete(key);
  }

  private evict(nowMs: number): void {
    if (this.keys.size <= this.o.maxKeys) return;
    for (const [key, r] of this.keys) if (r.expiresAt <= nowMs) this.keys.delete(key);
    for (const [key, r] of this.keys) {
      if (this.keys.size <= this.o.maxKeys) break;
      if (r.result !== undefined) this.keys.delete(key);
    }
  }

  get size(): number {
    return this.keys.size;
  }

  async close(): Promise<void> {}
}

// Only the holder of the lease may complete or release (a late first call must not overwrite a
// newer claim made after its marker expired).
const COMPLETE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local r = cjson.decode(v)
if r.lease ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], cjson.encode({ fingerprint = r.fingerprint, resultText = ARGV[2] }), 'PX', ARGV[3])
return 1
`;
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if cjson.decode(v).lease ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;

/** Shared by every instance through Redis: `SET NX PX` claims, Lua checks the lease on completion. */
export class RedisIdempotencyKeys<V> implements IdempotencyKeys<V> {
  readonly kind = "redis";
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly o: IdempotencyTimes & { prefix: string },
  ) {
    this.redis = connectRedis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: 2000,
      retryStrategy: (n: number) => Math.min(n * 200, 2000),
    });
    this.redis.on("error", () => undefined); // a failing command rejects; the stage turns that into a refusal
  }

  private k(key: string): string {
    return `${this.o.prefix}idem:${key}`;
  }

  async claim(key: string, fingerprint: string): Promise<IdempotencyClaim<V>> {
    const lease = randomUUID();
    for (;;) {
      const set = await this.redis.set(this.k(key), JSON.stringify({ fingerprint, lease }), "PX", this.o.inFlightTtlMs, "NX");
      if (set === "OK") return { state: "claimed", lease };
      const text = await this.redis.get(this.k(key));
      // Expired between the two commands: claim again.
      if (text === null) continue;
      // The result is kept as text inside the record, so Lua never re-encodes (and alters) it.
      const stored = JSON.parse(text) as { fingerprint: string; lease?: string; resultText?: string };
      const found: StoredKey<V> = { fingerprint: stored.fingerprint, lease: stored.lease ?? null, expiresAt: 0 };
      if (stored.resultText !== undefined) found.result = JSON.parse(stored.resultText) as V;
      return claimOf(found, fingerprint);
    }
  }

  /** One round trip: the script checks the lease and stores the result in place of the marker. */
  async complete(key: string, lease: string, result: V): Promise<void> {
    await this.redis.eval(COMPLETE, 1, this.k(key), lease, JSON.stringify(result), this.o.ttlMs);
  }

  async release(key: string, lease: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.k(key), lease);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/**
 * A shared backend (Redis) with the operator's choice when it is unreachable (REDIS_FAILURE_MODE):
 * `closed` refuses calls with a key (503: better no send than a second one); `open` keeps them
 * going with this instance's keys, so repeats through the same instance are still answered once.
 */
export class FailoverIdempotencyKeys<V> implements IdempotencyKeys<V> {
  readonly kind: "redis" | "sql";
  private degraded = false;
  private static readonly LOCAL = "local:";

  constructor(
    private readonly primary: IdempotencyKeys<V>,
    private readonly fallback: IdempotencyKeys<V>,
    private readonly mode: "open" | "closed",
    private readonly onDegraded?: (degraded: boolean, err?: unknown) => void,
  ) {
    this.kind = primary.kind === "memory" ? "redis" : primary.kind;
  }

  async claim(key: string, fingerprint: string, nowMs: number): Promise<IdempotencyClaim<V>> {
    try {
      const claim = await this.primary.claim(key, fingerprint, nowMs);
      this.setDegraded(false);
      return claim;
    } catch (err) {
      this.setDegraded(true, err);
      if (this.mode === "closed") throw err;
      const claim = await this.fallback.claim(key, fingerprint, nowMs);
      return claim.state === "claimed" ? { state: "claimed", lease: FailoverIdempotencyKeys.LOCAL + claim.lease } : claim;
    }
  }

  complete(key: string, lease: string, result: V, nowMs: number): Promise<void> {
    return lease.startsWith(FailoverIdempotencyKeys.LOCAL)
      ? this.fallback.complete(key, lease.slice(FailoverIdempotencyKeys.LOCAL.length), result, nowMs)
      : this.primary.complete(key, lease, result, nowMs);
  }

  release(key: string, lease: string): Promise<void> {
    return lease.startsWith(FailoverIdempotencyKeys.LOCAL)
      ? this.fallback.release(key, lease.slice(FailoverIdempotencyKeys.LOCAL.length))
      : this.primary.release(key, lease);
  }

  isDegraded(): boolean {
    return this.degraded;
  }

  private setDegraded(degraded: boolean, err?: unknown): void {
    if (this.degraded === degraded) return;
    this.degraded = degraded;
    this.onDegraded?.(degraded, err);
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}

/** Shared through the SQL store (PostgreSQL or SQLite): the primary key makes the claim atomic. */
export class SqlIdempotencyKeys<V> implements IdempotencyKeys<V> {
  readonly kind = "sql";

  constructor(
    private readonly driver: SqlDriver,
    private readonly o: IdempotencyTimes,
  ) {}

  async claim(key: string, fingerprint: string, nowMs: number): Promise<IdempotencyClaim<V>> {
    const lease = randomUUID();
    for (let tries = 0; ; tries++) {
      const inserted = await this.driver.run(
        `INSERT INTO idempotency_keys (id, fingerprint, lease, result, expires_at) VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (id) DO NOTHING`,
        [key, fingerprint, lease, nowMs + this.o.inFlightTtlMs],
      );
      if (inserted.changes === 1) return { state: "claimed", lease };
      const [row] = await this.driver.all<{ fingerprint: string; lease: string | null; result: string | null; expires_at: number }>(
        `SELECT fingerprint, lease, result, expires_at FROM idempotency_keys WHERE id = $1`,
        [key],
      );
      if (row !== undefined && row.expires_at > nowMs) {
        const stored: StoredKey<V> = { fingerprint: row.fingerprint, lease: row.lease, expiresAt: row.expires_at };
        if (row.result !== null) stored.result = JSON.parse(row.result) as V;
        return claimOf(stored, fingerprint);
      }
      // Expired (or gone): remove it unless someone else already replaced it, then claim again.
      if (row !== undefined) await this.driver.run(`DELETE FROM idempotency_keys WHERE id = $1 AND expires_at <= $2`, [key, nowMs]);
      if (tries > 3) return { state: "in_flight" };
    }
  }

  async complete(key: string, lease: string, result: V, nowMs: number): Promise<void> {
    await this.driver.run(`UPDATE idempotency_keys SET lease = NULL, result = $1, expires_at = $2 WHERE id = $3 AND lease = $4`, [
      JSON.stringify(result),
      nowMs + this.o.ttlMs,
      key,
      lease,
    ]);
  }

  async release(key: string, lease: string): Promise<void> {
    await this.driver.run(`DELETE FROM idempotency_keys WHERE id = $1 AND lease = $2`, [key, lease]);
  }

  /** Drops expired keys; the claim path ignores them anyway, this only keeps the table small. */
  async sweep(nowMs: number): Promise<number> {
    return (await this.driver.run(`DELETE FROM idempotency_keys WHERE expires_at <= $1`, [nowMs])).changes;
  }

  async close(): Promise<void> {}
}
