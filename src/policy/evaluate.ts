import { scopeCovers } from "../identity/token-claims.js";
import { checkGuard, guardValue } from "./guards.js";
import {
  APPROVAL_TTL_DEFAULT_SECONDS,
  APPROVAL_TTL_MAX_SECONDS,
  type ApprovalRequirement,
  type Decision,
  type LimitCheck,
  type Policy,
  type Rule,
  type RuleRef,
  type TraceEntry,
} from "./types.js";
import { calendarWindow, describeSchedule, inSchedule } from "./windows.js";

export interface EvaluationInput {
  agent: { id: string; role: string; status?: "active" | "suspended" };
  /** What the token carries: its scopes can only narrow what policy allows. */
  token: { scopes: readonly string[]; intent?: string | undefined };
  call: { tool: string; action: string; params: Record<string, unknown> };
  policies: readonly Policy[];
  now: number;
  /** Build the full trace (for explain); the hot path leaves it off. */
  explain?: boolean;
  /** Default for quotas that do not say whether failed upstream calls count. */
  countFailedCalls?: boolean;
}

/** `*` alone means every tool and action. */
export function covers(scope: string, tool: string, action: string): boolean {
  return scope === "*" ? true : scopeCovers(scope, tool, action);
}

const isConstraint = (r: Rule) =>
  r.intents !== undefined ||
  r.guards !== undefined ||
  r.quota !== undefined ||
  r.schedule !== undefined ||
  r.rateLimit !== undefined ||
  r.requireApproval !== undefined;

/**
 * Decides one call. Pure: no I/O, no clock but `now`, no counters (the stateful limits the call
 * must fit in are returned for the counters to decide atomically).
 *
 * Merge rule across every applicable policy (global, role, agent):
 *  1. a suspended agent is refused;
 *  2. the token must carry a scope covering the call;
 *  3. any matching deny rule wins (a deny rule with guards, intents or a schedule applies only when they match);
 *  4. otherwise some plain allow rule (one without constraints) must cover the call — deny by default;
 *  5. every allow rule with constraints that covers the call must pass: intents, guards and schedules
 *     here; rate limits and quotas by the counters, so the tightest one decides;
 *  6. an allow rule with `requireApproval` does not refuse: where its intents, guards or schedule fail
 *     (or it has none) the call is allowed only once a person approves it. A refusal from any other
 *     rule still wins, so a call policy refuses is never queued for approval.
 */
export function evaluate(input: EvaluationInput): Decision {
  const { tool, action, params } = input.call;
  const trace: TraceEntry[] = [];
  const explain = input.explain === true;
  const note = (ref: RuleRef, effect: "allow" | "deny", kind: TraceEntry["kind"], outcome: TraceEntry["outcome"], why: string) => {
    if (explain) trace.push({ ...ref, effect, kind, outcome, why });
  };
  const call = `${tool}:${action}`;

  if (input.agent.status === "suspended") return { allow: false, reason: "agent_suspended", message: "the agent is suspended", trace };
  if (!input.token.scopes.some((s) => covers(s, tool, action))) {
    return { allow: false, reason: "scope_denied", message: `the token's scopes do not include ${call}`, trace };
  }

  // Every applicable policy that lists claimable intents must list the token's: the agent chose its
  // intent when it asked for the token, so without this `intents` rules would be its own say-so.
  if (input.token.intent !== undefined) {
    for (const policy of input.policies) {
      const claimable = policy.document.claimableIntents;
      if (policy.document.enabled === false || claimable === undefined || claimable.includes(input.token.intent)) continue;
      return {
        allow: false,
        reason: "intent_required",
        message: `policy "${policy.document.name}" (version ${policy.version}) does not let this agent claim the intent "${input.token.intent}" (claimable: ${claimable.join(", ") || "none"})`,
        trace,
      };
    }
  }

  let granted: RuleRef | undefined;
  const denials: RuleRef[] = [];
  const constraints: { ref: RuleRef; rule: Rule; policy: Policy }[] = [];
  for (const policy of input.policies) {
    if (policy.document.enabled === false) continue;
    policy.document.rules.forEach((rule, index) => {
      const applies = rule.scopes.some((s) => covers(s, tool, action));
      // The hot path skips rules that do not cover the call before building anything for them.
      if (!applies && !explain) return;
      const ref: RuleRef = {
        policyId: policy.id,
        policyName: policy.document.name,
        version: policy.version,
        rule: index,
        ...(rule.id === undefined ? {} : { ruleId: rule.id }),
      };
      if (!applies) {
        note(
          ref,
          rule.effect,
          isConstraint(rule) ? "constraint" : rule.effect === "allow" ? "grant" : "deny",
          "not_applicable",
          `scopes ${rule.scopes.join(", ")} do not cover ${call}`,
        );
        return;
      }
      if (rule.effect === "deny") {
        const unmet = denyConditionUnmet(rule, input, tool, action, params);
        if (unmet !== undefined) {
          note(ref, "deny", "deny", "not_applicable", unmet);
          return;
        }
        denials.push(ref);
        note(ref, "deny", "deny", "denied", `deny rule covers ${call}`);
        return;
      }
      if (isConstraint(rule)) {
        constraints.push({ ref, rule, policy });
        note(ref, "allow", "constraint", "pending", "constraint applies to this call");
      } else {
        granted ??= ref;
        note(ref, "allow", "grant", "granted", `allows ${call}`);
      }
    });
  }
  if (denials.length > 0) {
    return { allow: false, reason: "scope_denied", message: `${call} is denied by policy "${denials[0]!.policyName}"`, rule: denials[0]!, trace };
  }
  if (granted === undefined) {
    return { allow: false, reason: "scope_denied", message: `no policy allows ${call} for this agent (deny by default)`, trace };
  }

  const resolve = (ref: RuleRef, outcome: TraceEntry["outcome"], why: string) => {
    if (!explain) return;
    const entry = trace.find((t) => t.policyId === ref.policyId && t.rule === ref.rule && t.outcome === "pending");
    if (entry) {
      entry.outcome = outcome;
      entry.why = why;
    }
  };

  // Stateless constraints first, so a refused call never consumes a quota or a rate-limit token.
  const approvals: { ref: RuleRef; rule: Rule; why: string }[] = [];
  for (const { ref, rule } of constraints) {
    const unmet = constraintUnmet(rule, input, tool, action, params, call);
    if (unmet === undefined && rule.requireApproval !== undefined && !hasConditions(rule)) {
      approvals.push({ ref, rule, why: `policy "${ref.policyName}" holds every ${call} for approval` });
      resolve(ref, "approval_required", "every call this rule covers needs a person's approval");
      continue;
    }
    if (unmet === undefined) continue;
    if (rule.requireApproval !== undefined) {
      approvals.push({ ref, rule, why: `policy "${ref.policyName}" needs approval: ${unmet.why}` });
      resolve(ref, "approval_required", `${unmet.why}: a person must approve`);
      continue;
    }
    resolve(ref, "failed", unmet.why);
    return { allow: false, reason: unmet.reason, message: unmet.message(ref), rule: ref, trace };
  }

  const limits: LimitCheck[] = [];
  for (const { ref, rule, policy } of constraints) {
    const ruleKey = `${policy.id}:${rule.id ?? ref.rule}`;
    if (rule.rateLimit !== undefined) {
      const per = rule.rateLimit.per ?? "agent";
      const who =
        per === "agent" ? `a:${input.agent.id}` : per === "agentTool" ? `a:${input.agent.id}:${tool}` : per === "role" ? `r:${input.agent.role}` : "all";
      limits.push({
        kind: "rate",
        key: `rate:${ruleKey}:${who}`,
        ref,
        limit: rule.rateLimit.burst ?? Math.max(1, Math.ceil(rule.rateLimit.perSecond)),
        perSecond: rule.rateLimit.perSecond,
      });
    }
  }
  for (const { ref, rule, policy } of constraints) {
    const ruleKey = `${policy.id}:${rule.id ?? ref.rule}`;
    if (rule.quota !== undefined) {
      const { startMs, endMs } = calendarWindow(input.now, rule.quota.per, rule.quota.timeZone);
      const subject = policy.document.subject;
      const who = rule.quota.shared ? ("role" in subject ? `r:${subject.role}` : "agentId" in subject ? `a:${subject.agentId}` : "all") : `a:${input.agent.id}`;
      const tokens = rule.quota.unit === "tokens";
      // A token budget keeps its own count: switching a rule's unit never mixes calls and tokens.
      limits.push({
        kind: "quota",
        key: `quota:${ruleKey}:${who}:${startMs}${tokens ? ":tokens" : ""}`,
        ref,
        limit: rule.quota.limit,
        windowEndMs: endMs,
        countFailures: rule.quota.countFailures ?? input.countFailedCalls ?? true,
        ...(tokens ? { unit: "tokens" as const } : {}),
      });
    }
  }
  for (const { ref, rule } of constraints)
    if (rule.quota === undefined && rule.rateLimit === undefined) resolve(ref, "passed", "intents, guards and schedule pass");
  for (const l of limits)
    resolve(l.ref, "passed", l.kind === "quota" ? `quota of ${l.limit} per window applies` : `rate limit ${l.perSecond}/s (burst ${l.limit}) applies`);
  if (approvals.length === 0) return { allow: true, limits, trace };
  return { allow: true, limits, trace, approval: mergeApprovals(approvals) };
}

const hasConditions = (r: Rule) => r.intents !== undefined || r.guards !== undefined || r.schedule !== undefined;

type Unmet = { reason: "intent_required" | "guard_failed" | "off_hours"; why: string; message: (ref: RuleRef) => string };

/** The first of an allow rule's intents, guards and schedule that the call fails, if any. */
function constraintUnmet(rule: Rule, input: EvaluationInput, tool: string, action: string, params: Record<string, unknown>, call: string): Unmet | undefined {
  if (rule.intents !== undefined && (input.token.intent === undefined || !rule.intents.includes(input.token.intent))) {
    const intents = rule.intents.join(", ");
    return { reason: "intent_required", why: `intent must be one of ${intents}`, message: () => `${call} requires a token whose intent is one of: ${intents}` };
  }
  for (const [path, guard] of Object.entries(rule.guards ?? {})) {
    const why = checkGuard(path, guardValue(path, tool, action, params), guard);
    if (why !== undefined) return { reason: "guard_failed", why, message: (ref) => `policy "${ref.policyName}" refuses this call: ${why}` };
  }
  if (rule.schedule !== undefined && !inSchedule(input.now, rule.schedule)) {
    const when = describeSchedule(rule.schedule);
    return { reason: "off_hours", why: `outside ${when}`, message: () => `${call} is allowed only ${when}` };
  }
  return undefined;
}

/** Several rules may ask: the first one is named, the shortest wait wins, approvers and webhooks add up. */
function mergeApprovals(asked: { ref: RuleRef; rule: Rule; why: string }[]): ApprovalRequirement {
  const approvers = new Set<string>();
  const webhooks = new Map<string, "json" | "slack">();
  let ttlSeconds = APPROVAL_TTL_MAX_SECONDS;
  for (const { rule } of asked) {
    const r = rule.requireApproval!;
    ttlSeconds = Math.min(ttlSeconds, r.ttlSeconds ?? APPROVAL_TTL_DEFAULT_SECONDS);
    for (const a of r.approvers ?? []) approvers.add(a);
    if (r.webhookUrl !== undefined) webhooks.set(r.webhookUrl, r.webhookFormat ?? "json");
  }
  return {
    rule: asked[0]!.ref,
    ttlSeconds,
    approvers: [...approvers],
    reason: asked.map((a) => a.why).join("; "),
    webhooks: [...webhooks].map(([url, format]) => ({ url, format })),
  };
}

/** A deny rule with conditions applies only when all of them match; returns why it does not apply. */
function denyConditionUnmet(rule: Rule, input: EvaluationInput, tool: string, action: string, params: Record<string, unknown>): string | undefined {
  if (rule.intents !== undefined && (input.token.intent === undefined || !rule.intents.includes(input.token.intent)))
    return "intent is not one the rule denies";
  for (const [path, guard] of Object.entries(rule.guards ?? {})) {
    if (checkGuard(path, guardValue(path, tool, action, params), guard, "condition") !== undefined) return `${path} does not match the rule's condition`;
  }
  if (rule.schedule !== undefined && !inSchedule(input.now, rule.schedule)) return `outside ${describeSchedule(rule.schedule)}`;
  return undefined;
}
