import { GatewayError } from "../errors/index.js";
import type { Counters } from "../limits/counters.js";
import type { Authorizer } from "../proxy/stages.js";
import { evaluate } from "./evaluate.js";
import { createRedirectCheck } from "./redirect-check.js";
import type { PolicyService } from "./service.js";
import type { DenialReason, LimitCheck } from "./types.js";

/** Hooks for metrics; labels stay bounded (decision, reason, tool, action). */
export interface PolicyEvents {
  decision?(decision: "allow" | "deny"): void;
  denied?(e: { reason: DenialReason | "approval_required"; tool: string; action: string }): void;
}

/**
 * The policy and limits behind the road's authorize stage: evaluates the applicable policies (pure,
 * in memory), then takes the call's rate-limit tokens and quota units from the counters in one
 * atomic step. What was charged is returned as data so the same stage can refund it later, on this
 * instance or another (a job run elsewhere).
 */
export function createPolicyAuthorizer(o: {
  policies: PolicyService;
  counters: Counters;
  now: () => number;
  countFailedCalls: boolean;
  events?: PolicyEvents;
}): Authorizer {
  const decide = (token: Parameters<Authorizer["charge"]>[0], call: Parameters<Authorizer["charge"]>[1]) => {
    const decision = evaluate({
      agent: { id: token.agentId, role: token.role },
      token: { scopes: token.scopes, intent: token.intent },
      call,
      policies: o.policies.applicable(token.agentId, token.role),
      now: o.now(),
      countFailedCalls: o.countFailedCalls,
    });
    if (!decision.allow) throw deny(decision.reason, decision.message, call, o.events, decision.rule, decision.retryAfterSeconds);
    return decision;
  };
  const redirectCheck = createRedirectCheck({ policies: o.policies, now: o.now });
  return {
    redirectCheck,
    async charge(token, call, counted, approval = "refuse") {
      const decision = decide(token, call);
      const heldFor = approval === "satisfied" ? undefined : decision.approval;
      if (heldFor !== undefined && approval === "refuse") {
        throw deny("approval_required", `${heldFor.reason}; only a live call (POST /api/proxy) can wait for a person's approval`, call, o.events, heldFor.rule);
      }
      // Deferred work (a job, a held call) takes rate tokens when accepted and quota units when it
      // runs: each phase counts once, and quota is only spent on work about to reach the upstream.
      if (heldFor !== undefined) counted = "rate";
      const limits = decision.limits.filter((l) => counted === "all" || (counted === "rate" ? l.kind === "rate" : l.kind === "quota"));
      if (limits.length > 0) {
        const outcome = await o.counters.consume(limits, o.now());
        if (!outcome.ok) {
          const check = limits[outcome.index]!;
          const reason: DenialReason = check.kind === "quota" ? "quota_exceeded" : "rate_limited";
          const message =
            check.kind === "quota"
              ? `quota of ${check.limit} ${check.unit === "tokens" ? "model tokens" : "calls"} per window reached (policy "${check.ref.policyName}"); it resets in ${outcome.retryAfterSeconds} s`
              : `rate limit of ${check.perSecond}/s with bursts of ${check.limit} reached (policy "${check.ref.policyName}")`;
          throw deny(reason, message, call, o.events, check.ref, outcome.retryAfterSeconds);
        }
      }
      o.events?.decision?.("allow");
      const quotas = limits.filter((l: LimitCheck) => l.kind === "quota");
      return heldFor === undefined ? { quotas } : { quotas, heldFor };
    },
    async recordUsage(charge, tokens) {
      await o.counters.addUsage(charge.quotas, tokens, o.now());
    },
    async refund(charge, why) {
      // A call that never left is not counted at all; a failed one only by quotas that say failures do not count.
      const quotas = why === "not_sent" ? charge.quotas : charge.quotas.filter((q) => q.countFailures === false);
      if (quotas.length > 0) await o.counters.refund(quotas, o.now());
    },
  };
}

/** Policy enforcement off (FF_POLICY=off): every authenticated call may go, nothing is counted. */
export const allowAllAuthorizer: Authorizer = {
  charge: async () => ({ quotas: [] }),
  refund: async () => undefined,
};

function deny(
  reason: DenialReason | "approval_required",
  message: string,
  call: { tool: string; action: string },
  events: PolicyEvents | undefined,
  rule?: object,
  retryAfterSeconds?: number,
): GatewayError {
  events?.decision?.("deny");
  events?.denied?.({ reason, tool: call.tool, action: call.action });
  return new GatewayError(reason, message, {
    details: { reason, ...(rule === undefined ? {} : { rule }) },
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}
