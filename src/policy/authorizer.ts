import { GatewayError } from "../errors/index.js";
import type { Counters } from "../limits/counters.js";
import type { Authorizer } from "../proxy/road.js";
import { evaluate } from "./evaluate.js";
import type { PolicyService } from "./service.js";
import type { DenialReason, LimitCheck } from "./types.js";

/** Hooks for metrics; labels stay bounded (decision, reason, tool, action). */
export interface PolicyEvents {
  decision?(decision: "allow" | "deny"): void;
  denied?(e: { reason: DenialReason; tool: string; action: string }): void;
}

/**
 * The policy stage of the road: evaluates the applicable policies (pure, in memory), then takes the
 * call's rate-limit tokens and quota units from the counters in one atomic step.
 */
export function createPolicyAuthorizer(o: { policies: PolicyService; counters: Counters; now: () => number; countFailedCalls: boolean; events?: PolicyEvents }): Authorizer {
  return async (token, call) => {
    const now = o.now();
    const decision = evaluate({
      agent: { id: token.agentId, role: token.role },
      token: { scopes: token.scopes, intent: token.intent },
      call,
      policies: o.policies.applicable(token.agentId, token.role),
      now,
      countFailedCalls: o.countFailedCalls,
    });
    if (!decision.allow) throw deny(decision.reason, decision.message, call, o.events, decision.rule, decision.retryAfterSeconds);
    const limits = decision.limits;
    if (limits.length > 0) {
      const outcome = await o.counters.consume(limits, now);
      if (!outcome.ok) {
        const check = limits[outcome.index]!;
        const reason: DenialReason = check.kind === "quota" ? "quota_exceeded" : "rate_limited";
        const message =
          check.kind === "quota"
            ? `quota of ${check.limit} calls per window reached (policy "${check.ref.policyName}"); it resets in ${outcome.retryAfterSeconds} s`
            : `rate limit of ${check.perSecond}/s with bursts of ${check.limit} reached (policy "${check.ref.policyName}")`;
        throw deny(reason, message, call, o.events, check.ref, outcome.retryAfterSeconds);
      }
    }
    o.events?.decision?.("allow");
    const quotas = limits.filter((l: LimitCheck) => l.kind === "quota");
    const refundable = quotas.filter((l) => l.countFailures === false);
    if (quotas.length === 0) return {};
    return {
      ...(refundable.length === 0 ? {} : { upstreamFailed: () => o.counters.refund(refundable, o.now()) }),
      callNotSent: () => o.counters.refund(quotas, o.now()),
    };
  };
}

function deny(reason: DenialReason, message: string, call: { tool: string; action: string }, events: PolicyEvents | undefined, rule?: object, retryAfterSeconds?: number): GatewayError {
  events?.decision?.("deny");
  events?.denied?.({ reason, tool: call.tool, action: call.action });
  return new GatewayError(reason, message, {
    details: { reason, ...(rule === undefined ? {} : { rule }) },
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}
