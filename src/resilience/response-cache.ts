import { hash } from "node:crypto";
import { canonicalJson } from "../util/canonical-json.js";

/** Cache key: tool, action, canonical parameters and what in the caller's identity changes the answer. */
export function cacheKey(tool: string, action: string, params: unknown, scope: string): string {
  return hash("sha256", `${tool}\n${action}\n${scope}\n${canonicalJson(params)}`, "base64url");
}

interface Entry<V> {
  value: V;
  bytes: number;
  freshUntil: number;
  staleUntil: number;
}

export interface CacheOptions {
  maxEntries: number;
  maxBytes: number;
  /** Larger values are never cached, so one answer cannot evict everything. */
  maxEntryBytes: number;
  /** How long after expiry an entry may still be served when the upstream fails. */
  staleSeconds: number;
}

export interface CacheLookup<V> {
  value: V;
  fresh: boolean;
}

/** LRU bounded by entries and bytes, with a fresh TTL and a stale-if-error window. Injected clock. */
export class ResponseCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private bytes = 0;

  constructor(private readonly o: CacheOptions) {}

  get(key: string, now: number, allowStale = false): CacheLookup<V> | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (now >= e.staleUntil) {
      this.delete(key);
      return undefined;
    }
    const fresh = now < e.freshUntil;
    if (!fresh && !allowStale) return undefined;
    // Touch: most recently used goes to the end.
    this.entries.delete(key);
    this.entries.set(key, e);
    return { value: e.value, fresh };
  }

  set(key: string, value: V, bytes: number, ttlSeconds: number, now: number): boolean {
    if (bytes > this.o.maxEntryBytes || ttlSeconds <= 0) return false;
    this.delete(key);
    const entry: Entry<V> = { value, bytes, freshUntil: now + ttlSeconds * 1000, staleUntil: now + (ttlSeconds + this.o.staleSeconds) * 1000 };
    this.entries.set(key, entry);
    this.bytes += bytes;
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.o.maxEntries && this.bytes <= this.o.maxBytes) break;
      this.delete(oldest);
    }
    return true;
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.bytes -= e.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}

/** Identical concurrent work runs once; every caller gets the leader's result (or error). */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  /** @returns the result and whether this caller led (made the call) */
  async run(key: string, work: () => Promise<T>): Promise<{ value: T; leader: boolean }> {
    const existing = this.inFlight.get(key);
    if (existing !== undefined) return { value: await existing, leader: false };
    const promise = work().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return { value: await promise, leader: true };
  }

  get size(): number {
    return this.inFlight.size;
  }
}
