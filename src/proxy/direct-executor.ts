import { GatewayError } from "../errors/index.js";
import type { Executor } from "./road.js";

/**
 * The adapter call with nothing around it but a deadline: what the road uses when every
 * resilience flag is off. The timeout covers the whole call, body read included.
 */
export function directExecutor(ceilingMs: number): Executor {
  return async (action, params, ctx) => {
    const timeoutMs = effectiveTimeoutMs(action.timeoutMs, ceilingMs);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const started = performance.now();
    try {
      const invokeContext: Parameters<typeof action.invoke>[1] = { credential: ctx.credential, signal: controller.signal, correlationId: ctx.correlationId };
      if (ctx.traceparent !== undefined) invokeContext.traceparent = ctx.traceparent;
      const reply = await action.invoke(params, invokeContext);
      return { reply, attempts: 1, cache: action.cacheable ? "bypass" : "none", upstreamMs: performance.now() - started };
    } catch (err) {
      if (controller.signal.aborted) throw new GatewayError("upstream_timeout", `${action.tool} did not answer within ${timeoutMs} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** An action's own timeout, never above the configured ceiling (UPSTREAM_TIMEOUT_MS). */
export function effectiveTimeoutMs(actionTimeoutMs: number | undefined, ceilingMs: number): number {
  return Math.min(actionTimeoutMs ?? ceilingMs, ceilingMs);
}
