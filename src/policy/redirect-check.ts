import { GatewayError } from "../errors/index.js";
import type { VerifiedToken } from "../identity/index.js";
import type { CallToAuthorize, RedirectCheck } from "../proxy/stages.js";
import { evaluate } from "./evaluate.js";
import type { PolicyService } from "./service.js";

/**
 * The check a tool runs before it follows a redirect: the call's policy decided again, now, with
 * `params.url` replaced by the redirect's target, so `url.*` guards and deny rules hold on every hop
 * and an allowed host cannot bounce the call to a denied one. Limits are not taken again (the call
 * already has them). Calls without a `url` parameter get no check (there is nothing to redirect).
 * The check throws GatewayError `guard_failed` (403) naming the rule and the refused target.
 *
 * Its cache scope: agents of one role share policies unless one has policies of its own, and a
 * token's intent can change which rules apply, so answers are shared per role and intent, or per
 * agent and intent for an agent with its own policies.
 */
export function createRedirectCheck(o: {
  policies: PolicyService;
  now: () => number;
}): (who: Pick<VerifiedToken, "agentId" | "role" | "intent">, call: CallToAuthorize) => RedirectCheck | undefined {
  return (who, call) => {
    if (typeof call.params.url !== "string") return undefined;
    const personal = o.policies.applicable(who.agentId, who.role).some((p) => "agentId" in p.document.subject);
    const cacheScope = `${personal ? `agent:${who.agentId}` : `role:${who.role}`}\nintent:${who.intent ?? ""}`;
    const check = (target: string) => {
      const decision = evaluate({
        agent: { id: who.agentId, role: who.role },
        // The call was admitted with a scope covering it; only its parameters change here.
        token: { scopes: [`${call.tool}:${call.action}`], intent: who.intent },
        call: { tool: call.tool, action: call.action, params: { ...call.params, url: target } },
        policies: o.policies.applicable(who.agentId, who.role),
        now: o.now(),
      });
      if (decision.allow) return;
      const shown = target.slice(0, 200);
      throw new GatewayError("guard_failed", `the redirect to ${shown} is refused by policy: ${decision.message}`, {
        details: { reason: "guard_failed", redirect: shown, ...(decision.rule === undefined ? {} : { rule: decision.rule }) },
      });
    };
    return { check, cacheScope };
  };
}
