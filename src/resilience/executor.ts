import { GatewayError, isGatewayError } from "../errors/index.js";
import { replyFromJsonBytes, withoutRaw, type UpstreamReply } from "../proxy/catalog.js";
import { refused, stage, type CallOutcome, type Execution, type Stage, type ToolCall } from "../proxy/call.js";
import type { FeatureFlags } from "../config/index.js";
import { canonicalJson } from "../util/canonical-json.js";
import { hash } from "node:crypto";
import { backoffDelayMs, RetryBudget } from "./backoff.js";
import { CircuitBreaker, DEFAULT_BREAKER, type BreakerOptions, type BreakerState } from "./breaker.js";
import { ChaosController, type ChaosFault } from "./chaos.js";
import type { IdempotencyKeys } from "./idempotency.js";
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
  /** Where Idempotency-Keys are claimed (in-process, Redis or SQL), and how long a repeat waits for the first call. */
  idempotency: { keys: IdempotencyKeys<Execution>; waitMs: number; pollMs?: number };
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

/** A stable hash of the parameters (audit trail, idempotency fingerprint): never the parameters themselves. Never throws. */
export function paramsFingerprint(params: unknown): string {
  return hash("sha256", canonicalJson(params), "base64url").slice(0, 22);
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** The resolved action of a call; the resilience stages sit after `resolve` in the road. */
function actionOf(call: ToolCall) {
  if (call.resolved === undefined) throw new Error("resilience stage placed before the resolve stage");
  return call.resolved;
}

/**
 * The resilience stages, as factories sharing this instance's state (breakers, cache, budget).
 * Their order lives in the road's one list (src/proxy/road.ts):
 * idempotency → cache → retry → breaker → attempt (chaos + per-attempt timeout) → invoke.
 */
export function createResilience(o: ResilienceOptions) {
  const random = o.random ?? Math.random;
  const sleep = o.sleep ?? defaultSleep;
  const breakers = new Map<string, CircuitBreaker>();
  const cache = new ResponseCache<UpstreamReply>(o.cache);
  const flights = new SingleFlight<CallOutcome>();
  const budget = new RetryBudget({ ratio: o.retry.budgetRatio, minRetries: o.retry.budgetMinRetries, windowMs: 10_000 });

  const breakerFor = (tool: string) => {
    let b = breakers.get(tool);
    if (b === undefined) {
      b = new CircuitBreaker(o.breaker ?? DEFAULT_BREAKER, (from, to) => o.events?.breakerTransition?.(tool, from, to));
      breakers.set(tool, b);
    }
    return b;
  };

  /**
   * Same key and parameters → the first call's result without another upstream call, on any
   * instance sharing the key store. A repeat while the first runs waits for it (bounded by
   * `waitMs`), then gets 409 `idempotency_in_flight`.
   */
  const idempotency: Stage = stage("idempotency", async (call, next) => {
    // A stream cannot be stored and replayed: streamed calls are not deduplicated (docs/resilience.md).
    if (call.idempotencyKey === undefined || call.streaming === true) return next(call);
    const action = actionOf(call);
    const key = `${call.principal?.agentId ?? "-"}\n${action.tool}:${action.action}\n${call.idempotencyKey}`;
    const fingerprint = paramsFingerprint(call.params);
    const keys = o.idempotency.keys;
    const waitUntil = o.now() + o.idempotency.waitMs;
    for (;;) {
      let claim;
      try {
        claim = await keys.claim(key, fingerprint, o.now());
      } catch (err) {
        // Without the shared key store a repeat could send twice: refuse rather than risk it.
        return refused(
          new GatewayError("service_unavailable", "the idempotency key store is unreachable; retry later", { retryAfterSeconds: 2, cause: err }),
          "idempotency",
        );
      }
      if (claim.state === "conflict") {
        return refused(
          new GatewayError("idempotency_conflict", "this Idempotency-Key was already used with different parameters; use a new key for a different call"),
          "idempotency",
        );
      }
      if (claim.state === "done") {
        o.events?.idempotentReplay?.(action.tool);
        return { kind: "answered", execution: { ...claim.result, attempts: 0, upstreamMs: 0, replayed: true } };
      }
      if (claim.state === "claimed") {
        const outcome = await next(call);
        const settle =
          outcome.kind === "answered"
            ? keys.complete(key, claim.lease, { ...outcome.execution, reply: withoutRaw(outcome.execution.reply) }, o.now())
            : keys.release(key, claim.lease);
        // The answer stands even if storing it failed: the key then expires with its marker.
        await settle.catch(() => undefined);
        return outcome;
      }
      if (o.now() >= waitUntil) {
        return refused(
          new GatewayError("idempotency_in_flight", "a call with this Idempotency-Key is still running; retry later to get its result", {
            retryAfterSeconds: 1,
          }),
          "idempotency",
        );
      }
      await sleep(o.idempotency.pollMs ?? 25);
    }
  });

  /** Response cache with single-flight and stale-if-error, for cacheable actions. */
  const cached: Stage = stage("cache", async (call, next) => {
    const action = actionOf(call);
    if (!o.features.cache || !action.cacheable) return next(call);
    const key = cacheKey(action.tool, action.action, call.params, call.cacheScope ?? call.principal?.role ?? "");
    const bypass = call.cacheMode === "bypass";
    if (!bypass) {
      const hit = cache.get(key, o.now());
      if (hit !== undefined) {
        o.events?.cache?.(action.tool, "hit");
        return answered(fromStored(hit.value), "hit");
      }
    }
    const fetchAndStore = async () => {
      const outcome = await next(call);
      if (outcome.kind === "answered")
        cache.set(key, toStored(outcome.execution.reply), memoryOf(outcome.execution.reply), action.cacheTtlSeconds ?? o.cache.defaultTtlSeconds, o.now());
      return outcome;
    };
    let outcome: CallOutcome;
    if (bypass) {
      // A bypass asked for a fresh answer of its own: it does not join (or lead) a flight.
      outcome = await fetchAndStore();
      if (outcome.kind === "answered") {
        o.events?.cache?.(action.tool, "bypass");
        return { kind: "answered", execution: { ...outcome.execution, cache: "bypass" } };
      }
    } else {
      const { value, leader } = await flights.run(key, fetchAndStore);
      outcome = value;
      if (outcome.kind === "answered") {
        o.events?.cache?.(action.tool, leader ? "miss" : "hit");
        return leader ? { kind: "answered", execution: { ...outcome.execution, cache: "miss" } } : answered(outcome.execution.reply, "hit");
      }
    }
    const servesStale =
      (outcome.kind === "failed" && isUpstreamFailure(outcome.error)) || (outcome.kind === "refused" && outcome.error.code === "circuit_open");
    const stale = servesStale ? cache.get(key, o.now(), true) : undefined;
    if (stale === undefined) return outcome;
    o.events?.cache?.(action.tool, "stale");
    return {
      kind: "answered",
      execution: { reply: fromStored(stale.value), attempts: outcome.kind === "failed" ? outcome.attempts : 0, upstreamMs: 0, cache: "stale" },
    };
  });

  /**
   * Retries of idempotent actions: backoff with jitter, a retry budget, one deadline for the whole
   * call. It sits outside the breaker (cockatiel's `wrap(retry, breaker)`): every attempt asks the
   * breaker, so a breaker that opens mid-call ends the retries at once. A retry the breaker refuses
   * ends the call with the last upstream failure, so `circuit_open` always means "refused without
   * trying".
   */
  const retry: Stage = stage("retry", async (call, next) => {
    const action = actionOf(call);
    const started = performance.now();
    const deadlineAt = o.now() + o.deadlineMs;
    const maxAttempts = o.features.retry && action.idempotent ? o.retry.maxAttempts : 1;
    budget.request(action.tool, o.now());
    let lastFailure: Extract<CallOutcome, { kind: "failed" }> | undefined;
    for (let attemptNo = 1; ; attemptNo++) {
      const outcome = await next({ ...call, deadlineAt });
      const upstreamMs = performance.now() - started;
      if (outcome.kind === "answered") {
        if (attemptNo > 1) o.events?.retry?.(action.tool, "success");
        return { kind: "answered", execution: { ...outcome.execution, attempts: attemptNo, upstreamMs } };
      }
      if (attemptNo > 1) o.events?.retry?.(action.tool, "failure");
      if (outcome.kind !== "failed") return lastFailure ?? outcome;
      const tried = attemptNo;
      lastFailure = { kind: "failed", error: withAttempts(outcome.error, tried), attempts: tried, upstreamMs };
      if (attemptNo >= maxAttempts || !isRetryable(outcome.error)) return lastFailure;
      const retryAfterMs = outcome.error.retryAfterSeconds !== undefined ? outcome.error.retryAfterSeconds * 1000 : 0;
      const delay = Math.max(retryAfterMs, backoffDelayMs(attemptNo, { baseMs: o.retry.baseMs, maxMs: o.retry.maxDelayMs }, random));
      if (o.now() + delay >= deadlineAt) return lastFailure;
      if (!budget.tryRetry(action.tool, o.now())) {
        o.events?.retry?.(action.tool, "budget_exhausted");
        return lastFailure;
      }
      await sleep(delay);
    }
  });

  /**
   * The circuit breaker, asked by every attempt and told every attempt's outcome: each attempt is
   * an observation of the upstream's health (counting only final outcomes kept breakers closed under
   * 55 % injected faults while retries multiplied the load on the failing upstream). A half-open
   * breaker lets a probe through; if it fails the breaker opens again and refuses the retry.
   */
  const breaker: Stage = stage("breaker", async (call, next) => {
    const action = actionOf(call);
    if (!o.features.breakers) return next(call);
    const b = breakerFor(action.tool);
    const admission = b.admit(o.now());
    if (!admission.allowed) {
      o.events?.breakerFastFail?.(action.tool);
      return refused(
        new GatewayError("circuit_open", `${action.tool} is failing: its circuit breaker is open, calls are refused until it recovers`, {
          retryAfterSeconds: Math.max(1, Math.ceil(admission.retryAfterMs / 1000)),
          details: { tool: action.tool, attempts: 0 },
        }),
        "breaker",
      );
    }
    const outcome = await next(call);
    if (outcome.kind === "answered") b.record(o.now(), false, admission.probe);
    else if (outcome.kind === "failed" && isUpstreamFailure(outcome.error)) b.record(o.now(), true, admission.probe);
    else b.release(admission.probe);
    return outcome;
  });

  /** One upstream attempt: injected faults (chaos), then the adapter under its own timeout. */
  const attempt: Stage = stage("attempt", async (call, next) => {
    const action = actionOf(call);
    const attemptStarted = performance.now();
    const remaining = (call.deadlineAt ?? o.now() + o.deadlineMs) - o.now();
    const timeoutMs = Math.max(1, Math.min(effectiveTimeoutMs(action.timeoutMs, o.attemptTimeoutMs), remaining));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const timedOut = (): CallOutcome => ({
      kind: "failed",
      error: new GatewayError("upstream_timeout", `${action.tool} did not answer within ${timeoutMs} ms`, { details: { timeoutMs } }),
      attempts: 1,
      upstreamMs: performance.now() - attemptStarted,
    });
    let outcome: CallOutcome;
    try {
      const injected = await injectFaults(action.tool, timeoutMs, controller.signal);
      if (injected !== undefined) outcome = injected;
      else if (controller.signal.aborted) outcome = timedOut();
      else {
        outcome = await next({ ...call, signal: controller.signal });
        if (outcome.kind === "failed" && controller.signal.aborted) outcome = timedOut();
      }
    } finally {
      clearTimeout(timer);
    }
    if (outcome.kind === "failed" || outcome.kind === "answered") {
      o.events?.upstreamAttempt?.(action.tool, performance.now() - attemptStarted, outcome.kind === "failed" && isUpstreamFailure(outcome.error));
    }
    return outcome;
  });

  async function injectFaults(tool: string, timeoutMs: number, signal: AbortSignal): Promise<CallOutcome | undefined> {
    const faults = o.chaos.active() ? o.chaos.draw(tool, random) : { latencyMs: 0 };
    if (faults.latencyMs > 0) {
      o.events?.chaosInjected?.(tool, "latency");
      await sleep(faults.latencyMs, signal);
    }
    if (faults.failure === undefined) return undefined;
    o.events?.chaosInjected?.(tool, faults.failure);
    const failed = (error: GatewayError): CallOutcome => ({ kind: "failed", error, attempts: 1, upstreamMs: 0 });
    if (faults.failure === "timeout") {
      await sleep(timeoutMs + 1000, signal);
      return failed(new GatewayError("upstream_timeout", `${tool} did not answer within ${timeoutMs} ms`, { details: { timeoutMs } }));
    }
    if (faults.failure === "error500")
      return failed(
        new GatewayError("upstream_error", `${tool} failed (500): injected fault`, {
          details: { upstreamStatus: 500, reason: "upstream_5xx", retryable: true, injected: true },
        }),
      );
    return failed(
      new GatewayError("upstream_error", `could not reach ${tool}: ECONNRESET (injected fault)`, {
        details: { reason: "connection", errorCode: "ECONNRESET", retryable: true, injected: true },
      }),
    );
  }

  return {
    stages: { idempotency, cache: cached, retry, breaker, attempt },
    chaos: o.chaos,
    idempotencyKeys: o.idempotency.keys,
    breakerStates(): Record<string, BreakerState> {
      const now = o.now();
      return Object.fromEntries([...breakers].map(([tool, b]) => [tool, b.current(now)]));
    },
    breakerFor,
    cacheStats: () => cache.stats(),
    clearCache: () => cache.clear(),
  };
}

export type Resilience = ReturnType<typeof createResilience>;

/**
 * What the cache keeps of an answer: one with JSON bytes as those bytes alone, so an entry costs the
 * bytes it is counted for (a parsed tree would cost several times that, uncounted).
 */
function toStored(reply: UpstreamReply): UpstreamReply {
  if (reply.raw === undefined) return reply;
  // Bytes that share a larger block (a pooled slab) are copied, so the entry does not keep the block alive.
  const owned = reply.raw.byteOffset === 0 && reply.raw.buffer.byteLength === reply.raw.length;
  const raw = owned ? reply.raw : Buffer.from(Uint8Array.prototype.slice.call(reply.raw).buffer);
  return { status: reply.status, body: undefined, raw, bytes: reply.bytes, ...(reply.headers === undefined ? {} : { headers: reply.headers }) };
}

/** What a kept answer costs in memory, for the cache's byte bound: its bytes (what a parsed body costs is not counted). */
function memoryOf(reply: UpstreamReply): number {
  return reply.raw?.length ?? reply.bytes;
}

/** A kept answer as a fresh reply, its body parsed only if a stage or door reads it. */
function fromStored(stored: UpstreamReply): UpstreamReply {
  return stored.raw === undefined ? stored : replyFromJsonBytes(stored.status, stored.raw, stored.bytes, stored.headers);
}

function answered(reply: UpstreamReply, cacheStatus: "hit"): CallOutcome {
  return { kind: "answered", execution: { reply, attempts: 0, upstreamMs: 0, cache: cacheStatus } };
}

function withAttempts(err: GatewayError, attempts: number): GatewayError {
  const options: ConstructorParameters<typeof GatewayError>[2] = { status: err.status, details: { ...err.details, attempts } };
  if (err.retryAfterSeconds !== undefined) options.retryAfterSeconds = err.retryAfterSeconds;
  return new GatewayError(err.code, err.message, options);
}
