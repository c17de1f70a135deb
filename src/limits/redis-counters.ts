import type { Redis } from "ioredis";
import { connectRedis } from "../util/redis.js";
import { GatewayError } from "../errors/index.js";
import type { LimitCheck } from "../policy/types.js";
import type { Counters, LimitOutcome } from "./counters.js";

/**
 * One Lua script checks every limit and, only if all fit, consumes from each: atomic across any
 * number of gateway instances. Times come from the caller (the gateway's clock), so behaviour is
 * the same as the in-process backend and testable with an injected clock.
 * Returns {0, 0} on success or {index (1-based), retryAfterMs}.
 */
const CONSUME = `
local now = tonumber(ARGV[1])
local n = #KEYS
local levels = {}
for i = 1, n do
  local b = 1 + (i - 1) * 4
  local kind = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local rate = tonumber(ARGV[b + 3])
  local horizon = tonumber(ARGV[b + 4])
  if kind == 'q' or kind == 't' then
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used >= limit then return {i, horizon - now} end
    levels[i] = used
  else
    local h = redis.call('HMGET', KEYS[i], 't', 'at')
    local tokens = tonumber(h[1])
    local at = tonumber(h[2])
    if tokens == nil then tokens = limit; at = now end
    tokens = math.min(limit, tokens + math.max(0, now - at) / 1000 * rate)
    if tokens < 1 then return {i, math.ceil((1 - tokens) / rate * 1000)} end
    levels[i] = tokens
  end
end
for i = 1, n do
  local b = 1 + (i - 1) * 4
  local limit = tonumber(ARGV[b + 2])
  local rate = tonumber(ARGV[b + 3])
  local horizon = tonumber(ARGV[b + 4])
  if ARGV[b + 1] == 't' then
    -- A token budget is only checked here; its tokens are counted when the answer reports them (ADD_USAGE).
  elseif ARGV[b + 1] == 'q' then
    redis.call('INCR', KEYS[i])
    -- Relative to the caller's clock, so a skew between gateway and Redis clocks cannot expire a live window.
    redis.call('PEXPIRE', KEYS[i], math.max(1, horizon - now) + 60000)
  else
    redis.call('HSET', KEYS[i], 't', tostring(levels[i] - 1), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(limit / rate * 1000) + 60000)
  end
end
return {0, 0}
`;

const REFUND = `
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
`;

const PEEK = `
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 4
  local limit = tonumber(ARGV[b + 2])
  local rate = tonumber(ARGV[b + 3])
  if ARGV[b + 1] == 'q' or ARGV[b + 1] == 't' then
    out[i] = limit - tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    local h = redis.call('HMGET', KEYS[i], 't', 'at')
    local tokens = tonumber(h[1])
    if tokens == nil then out[i] = limit else out[i] = math.floor(math.min(limit, tokens + math.max(0, now - tonumber(h[2])) / 1000 * rate)) end
  end
end
return out
`;

/** Adds ARGV[1] tokens to each budget key, keeping (or setting) its expiry relative to the caller's clock. */
const ADD_USAGE = `
local amount = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('PEXPIRE', KEYS[i], math.max(1, tonumber(ARGV[2 + i]) - now) + 60000)
end
return 0
`;

type ScriptClient = Redis & {
  limitsAddUsage(...args: (string | number)[]): Promise<number>;
  limitsConsume(...args: (string | number)[]): Promise<[number, number]>;
  limitsRefund(...args: (string | number)[]): Promise<number>;
  limitsPeek(...args: (string | number)[]): Promise<number[]>;
};

export class RedisCounters implements Counters {
  readonly kind = "redis";
  private readonly redis: ScriptClient;

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    const redis = connectRedis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      retryStrategy: (n) => Math.min(n * 200, 2000),
    });
    redis.on("error", () => undefined); // reported through failed calls; ioredis reconnects by itself
    redis.defineCommand("limitsConsume", { lua: CONSUME });
    redis.defineCommand("limitsRefund", { lua: REFUND });
    redis.defineCommand("limitsPeek", { lua: PEEK });
    redis.defineCommand("limitsAddUsage", { lua: ADD_USAGE });
    this.redis = redis as ScriptClient;
  }

  /** Resolves once connected (or after `timeoutMs`, leaving calls to fail and fall back). */
  async ready(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.redis.status !== "ready" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  private args(checks: readonly LimitCheck[], now: number): (string | number)[] {
    const keys = checks.map((c) => `${this.prefix}${c.key}`);
    const argv: (string | number)[] = [now];
    for (const c of checks)
      argv.push(c.kind === "quota" ? (c.unit === "tokens" ? "t" : "q") : "r", c.limit, c.perSecond ?? 1, c.windowEndMs ?? now + 86_400_000);
    return [keys.length, ...keys, ...argv];
  }

  async consume(checks: readonly LimitCheck[], now: number): Promise<LimitOutcome> {
    if (checks.length === 0) return { ok: true };
    const [index, retryMs] = await this.redis.limitsConsume(...this.args(checks, now));
    return index === 0 ? { ok: true } : { ok: false, index: index - 1, retryAfterSeconds: Math.max(1, Math.ceil(retryMs / 1000)) };
  }

  async refund(checks: readonly LimitCheck[]): Promise<void> {
    const quotas = checks.filter((c) => c.kind === "quota" && c.unit !== "tokens");
    if (quotas.length === 0) return;
    await this.redis.limitsRefund(quotas.length, ...quotas.map((c) => `${this.prefix}${c.key}`));
  }

  async addUsage(checks: readonly LimitCheck[], amount: number, now: number): Promise<void> {
    const budgets = checks.filter((c) => c.kind === "quota" && c.unit === "tokens");
    if (budgets.length === 0 || !(amount > 0)) return;
    await this.redis.limitsAddUsage(
      budgets.length,
      ...budgets.map((c) => `${this.prefix}${c.key}`),
      Math.round(amount),
      now,
      ...budgets.map((c) => c.windowEndMs ?? now + 86_400_000),
    );
  }

  async peek(checks: readonly LimitCheck[], now: number): Promise<number[]> {
    if (checks.length === 0) return [];
    return (await this.redis.limitsPeek(...this.args(checks, now))).map(Number);
  }

  status(): "up" | "down" {
    return this.redis.status === "ready" ? "up" : "down";
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/**
 * Redis with a plan for when it is unreachable: `open` keeps limiting with per-instance counters
 * (each instance enforces the limits on its own, so the cluster may allow up to N × limit), `closed`
 * refuses calls that have limits with 503 until Redis returns.
 */
export class FailoverCounters implements Counters {
  readonly kind = "redis";
  private degraded = false;

  constructor(
    private readonly primary: RedisCounters,
    private readonly fallback: Counters,
    private readonly mode: "open" | "closed",
    private readonly onDegraded?: (degraded: boolean, err?: unknown) => void,
  ) {}

  private async attempt<T>(work: (c: Counters) => Promise<T>): Promise<T> {
    try {
      const out = await work(this.primary);
      if (this.degraded) {
        this.degraded = false;
        this.onDegraded?.(false);
      }
      return out;
    } catch (err) {
      if (!this.degraded) {
        this.degraded = true;
        this.onDegraded?.(true, err);
      }
      if (this.mode === "closed")
        throw new GatewayError("service_unavailable", "limits cannot be checked: Redis is unreachable and REDIS_FAILURE_MODE=closed", { retryAfterSeconds: 2 });
      return work(this.fallback);
    }
  }

  consume(checks: readonly LimitCheck[], now: number) {
    return checks.length === 0 ? Promise.resolve({ ok: true } as LimitOutcome) : this.attempt((c) => c.consume(checks, now));
  }
  refund(checks: readonly LimitCheck[], now: number) {
    return this.attempt((c) => c.refund(checks, now));
  }
  peek(checks: readonly LimitCheck[], now: number) {
    return this.attempt((c) => c.peek(checks, now));
  }
  addUsage(checks: readonly LimitCheck[], amount: number, now: number) {
    return this.attempt((c) => c.addUsage(checks, amount, now));
  }
  isDegraded(): boolean {
    return this.degraded;
  }
  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}
