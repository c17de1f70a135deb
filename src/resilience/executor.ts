import { GatewayError, isGatewayError } from "../errors/index.js";
import type { ResolvedAction, UpstreamReply } from "../proxy/catalog.js";
import { paramsFingerprint, type ExecuteContext, type ExecuteResult, type Executor } from "../proxy/road.js";
import type { FeatureFlags } from "../config/index.js";
import { backoffDelayMs, RetryBudget } from "./backoff.js";
import { CircuitBreaker, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from "./breaker.js";
import { ChaosController, type ChaosFault } from "./chaos.js";
import { IdempotencyStore } from "./idempotency.js";
import { cacheKey, ResponseCache, SingleFlight, type CacheOptions } from "./response-cache.js";

/** Hooks for metrics and logs; labels stay bounded (tool, outcome, state, fault). */
export interface ResilienceEvents {
  retry?(tool: string, outcome: "success" | "failure" | "budget_exhausted"): void;
  breakerTransition?(tool: string, from: BreakerState, to: BreakerState): void;
  breakerFastFail?(tool: string): void;
  cache?(tool: string, result: "hit" | "miss" | "bypass" | "stale"): void;
  chaosInjected?(tool: string, fault: ChaosFault): void;
  idempotentReplay?(tool: string): void;
  upstreamAttempt?(tool: string, durationMs: number, failure: boolean): void;
}

export interface ResilienceOptions {
  features: Pick<FeatureFlags, "cache" | "retry" | "breakers">;
  now: () => number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Ceiling on one attempt (UPSTREAM_TIMEOUT_MS); actions have their own lower defaults. */
  attemptTimeoutMs: number;
  /** Ceiling on the whole call, retries and backoff included. */
  deadlineMs: number;
  retry: { maxAttempts: number; baseMs: number; maxDelayMs: number; budgetRatio: number; budgetMinRetries: number };
  breaker?: BreakerOptions;
  cache: CacheOptions & { defaultTtlSeconds: number };
  idempotency: { ttlMs: number; maxKeys: number };
  chaos: ChaosController;
  events?: ResilienceEvents;
}

/** An action's own timeout, never above the configured ceiling (UPSTREAM_TIMEOUT_MS). */
export function effectiveTimeoutMs(actionTimeoutMs: number | undefined, ceilingMs: number): number {
  return Math.min(actionTimeoutMs ?? ceilingMs, ceilingMs);
}

/** Timeouts, connection errors, 5xx and 429 count against a tool; a request's own fault (4xx) and a rejected credential do not. */
export function isUpstreamFailure(err: unknown): boolean {
  if (!isGatewayError(err)) return false;
  if (err.code === "upstream_timeout") return true;
  return err.code === "upstream_error" && err.details?.reason !== "credential_rejected";
}

export function isRetryable(err: unknown): boolean {
  if (!isGatewayError(err)) return false;
  return err.code === "upstream_timeout" || (err.code === "upstream_error" && err.details?.retryable === true);
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

interface Attempted {
  reply: UpstreamReply;
  attempts: number;
  upstreamMs: number;
}

/**
 * The resilience stages around an adapter call, composed in this order:
 * idempotency → cache (with single-flight and stale-if-error) → circuit breaker → retries (backoff,
 * budget, deadline) → chaos → per-attempt timeout → adapter. Each stage is its own module with an
 * injected clock; this file only wires them.
 */
export function createResilientExecutor(o: ResilienceOptions) {
  const random = o.random ?? Math.random;
  const sleep = o.sleep ?? defaultSleep;
  const breakers = new Map<string, CircuitBreaker>();
  const cache = new ResponseCache<UpstreamReply>(o.cache);
  const flights = new SingleFlight<Attempted>();
  const idempotency = new IdempotencyStore<ExecuteResult>(o.idempotency);
  const budget = new RetryBudget({ ratio: o.retry.budgetRatio, minRetries: o.retry.budgetMinRetries, windowMs: 10_000 });

  const breakerFor = (tool: string) => {
    let b = breakers.get(tool);
    if (b === undefined) {
      b = new CircuitBreaker(o.breaker ?? DEFAULT_BREAKER, (from, to) => o.events?.breakerTransition?.(tool, from, to));
      breakers.set(tool, b);
    }
    return b;
  };

  /** One upstream attempt: chaos, then the adapter under its own deadline. */
  async function attempt(action: ResolvedAction, params: Record<string, unknown>, ctx: ExecuteContext, timeoutMs: number): Promise<UpstreamReply> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const faults = o.chaos.active() ? o.chaos.draw(action.tool, random) : { latencyMs: 0 };
      if (faults.latencyMs > 0) {
        o.events?.chaosInjected?.(action.tool, "latency");
        await sleep(faults.latencyMs, controller.signal);
      }
      if (faults.failure !== undefined) {
        o.events?.chaosInjected?.(action.tool, faults.failure);
        if (faults.failure === "timeout") await sleep(timeoutMs + 1000, controller.signal);
        else if (faults.failure === "error500") throw new GatewayError("upstream_error", `${action.tool} failed (500): injected fault`, { details: { upstreamStatus: 500, reason: "upstream_5xx", retryable: true, injected: true } });
        else throw new GatewayError("upstream_error", `could not reach ${action.tool}: ECONNRESET (injected fault)`, { details: { reason: "connection", errorCode: "ECONNRESET", retryable: true, injected: true } });
      }
      if (controller.signal.aborted) throw new GatewayError("upstream_timeout", `${action.tool} did not answer within ${timeoutMs} ms`);
      const invokeContext: Parameters<typeof action.invoke>[1] = { credential: ctx.credential, signal: controller.signal, correlationId: ctx.correlationId };
      if (ctx.traceparent !== undefined) invokeContext.traceparent = ctx.traceparent;
      return await action.invoke(params, invokeContext);
    } catch (err) {
      if (controller.signal.aborted) throw new GatewayError("upstream_timeout", `${action.tool} did not answer within ${timeoutMs} ms`, { details: { timeoutMs } });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Breaker, retries and attempts, for one logical upstream call. The breaker is asked once, before
   * the first attempt (so `circuit_open` always means "refused without trying"), and learns the
   * outcome of every attempt: each one is an observation of the upstream's health, and an upstream
   * that fails half its attempts is failing even when retries rescue some calls (counting only final
   * outcomes kept breakers closed under 55 % injected faults while retries multiplied the load on
   * the failing upstream). Retries stop as soon as the breaker opens.
   */
  async function callUpstream(action: ResolvedAction, params: Record<string, unknown>, ctx: ExecuteContext): Promise<Attempted> {
    const started = performance.now();
    const deadline = o.now() + o.deadlineMs;
    const breaker = o.features.breakers ? breakerFor(action.tool) : undefined;
    const admission = breaker?.admit(o.now()) ?? { allowed: true as const, probe: false };
    if (!admission.allowed) {
      o.events?.breakerFastFail?.(action.tool);
      throw new GatewayError("circuit_open", `${action.tool} is failing: its circuit breaker is open, calls are refused until it recovers`, {
        retryAfterSeconds: Math.max(1, Math.ceil(admission.retryAfterMs / 1000)),
        details: { tool: action.tool, attempts: 0 },
      });
    }
    // A half-open probe gets one attempt: it is there to test the upstream, not to insist.
    const maxAttempts = o.features.retry && action.idempotent && !admission.probe ? o.retry.maxAttempts : 1;
    budget.request(action.tool, o.now());
    for (let attemptNo = 1; ; attemptNo++) {
      const attemptStarted = performance.now();
      const remaining = deadline - o.now();
      const timeoutMs = Math.max(1, Math.min(effectiveTimeoutMs(action.timeoutMs, o.attemptTimeoutMs), remaining));
      try {
        const reply = await attempt(action, params, ctx, timeoutMs);
        breaker?.record(o.now(), false, admission.probe);
        o.events?.upstreamAttempt?.(action.tool, performance.now() - attemptStarted, false);
        if (attemptNo > 1) o.events?.retry?.(action.tool, "success");
        return { reply, attempts: attemptNo, upstreamMs: performance.now() - started };
      } catch (err) {
        const failure = isUpstreamFailure(err);
        o.events?.upstreamAttempt?.(action.tool, performance.now() - attemptStarted, failure);
        if (attemptNo > 1) o.events?.retry?.(action.tool, "failure");
        if (failure) breaker?.record(o.now(), true, admission.probe);
        const giveUp = (): never => {
          if (!failure) breaker?.release(admission.probe);
          throw withAttempts(err, attemptNo);
        };
        if (attemptNo >= maxAttempts || !isRetryable(err)) giveUp();
        // Other calls may have opened the breaker meanwhile: stop hammering.
        if (breaker !== undefined && breaker.current(o.now()) === "open") giveUp();
        const retryAfterMs = isGatewayError(err) && err.retryAfterSeconds !== undefined ? err.retryAfterSeconds * 1000 : 0;
        const delay = Math.max(retryAfterMs, backoffDelayMs(attemptNo, { baseMs: o.retry.baseMs, maxMs: o.retry.maxDelayMs }, random));
        if (o.now() + delay >= deadline) giveUp();
        if (!budget.tryRetry(action.tool, o.now())) {
          o.events?.retry?.(action.tool, "budget_exhausted");
          giveUp();
        }
        await sleep(delay);
      }
    }
  }

  /** Cache, single-flight and stale-if-error around the upstream call. */
  async function cached(action: ResolvedAction, params: Record<string, unknown>, ctx: ExecuteContext): Promise<ExecuteResult> {
    if (!o.features.cache || !action.cacheable) {
      const r = await callUpstream(action, params, ctx);
      return { ...r, cache: "none" };
    }
    const key = cacheKey(action.tool, action.action, params, ctx.cacheScope);
    const bypass = ctx.cacheMode === "bypass";
    if (!bypass) {
      const hit = cache.get(key, o.now());
      if (hit !== undefined) {
        o.events?.cache?.(action.tool, "hit");
        return { reply: hit.value, attempts: 0, upstreamMs: 0, cache: "hit" };
      }
    }
    const fetchAndStore = async () => {
      const r = await callUpstream(action, params, ctx);
      cache.set(key, r.reply, r.reply.bytes, action.cacheTtlSeconds ?? o.cache.defaultTtlSeconds, o.now());
      return r;
    };
    try {
      // A bypass asked for a fresh answer of its own: it does not join (or lead) a flight.
      if (bypass) {
        const r = await fetchAndStore();
        o.events?.cache?.(action.tool, "bypass");
        return { ...r, cache: "bypass" };
      }
      const { value, leader } = await flights.run(key, fetchAndStore);
      o.events?.cache?.(action.tool, leader ? "miss" : "hit");
      return leader ? { ...value, cache: "miss" } : { reply: value.reply, attempts: 0, upstreamMs: 0, cache: "hit" };
    } catch (err) {
      const stale = isUpstreamFailure(err) || (isGatewayError(err) && err.code === "circuit_open") ? cache.get(key, o.now(), true) : undefined;
      if (stale !== undefined) {
        o.events?.cache?.(action.tool, "stale");
        return { reply: stale.value, attempts: attemptsOf(err), upstreamMs: 0, cache: "stale" };
      }
      throw err;
    }
  }

  const execute: Executor = async (action, params, ctx) => {
    if (ctx.idempotencyKey === undefined) return cached(action, params, ctx);
    const key = `${ctx.agentId}\n${action.tool}:${action.action}\n${ctx.idempotencyKey}`;
    const { value, replayed } = await idempotency.run(key, paramsFingerprint(params), o.now(), () => cached(action, params, ctx));
    if (!replayed) return value;
    o.events?.idempotentReplay?.(action.tool);
    return { ...value, attempts: 0, upstreamMs: 0, replayed: true };
  };

  return {
    execute,
    chaos: o.chaos,
    breakerStates(): Record<string, BreakerState> {
      const now = o.now();
      return Object.fromEntries([...breakers].map(([tool, b]) => [tool, b.current(now)]));
    },
    breakerFor,
    cacheStats: () => cache.stats(),
    clearCache: () => cache.clear(),
  };
}

export type ResilientExecutor = ReturnType<typeof createResilientExecutor>;

function attemptsOf(err: unknown): number {
  return isGatewayError(err) && typeof err.details?.attempts === "number" ? err.details.attempts : 1;
}

function withAttempts(err: unknown, attempts: number): unknown {
  if (!isGatewayError(err)) return err;
  const options: ConstructorParameters<typeof GatewayError>[2] = { status: err.status, details: { ...err.details, attempts } };
  if (err.retryAfterSeconds !== undefined) options.retryAfterSeconds = err.retryAfterSeconds;
  return new GatewayError(err.code, err.message, options);
}
