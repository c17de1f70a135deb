/** The policy language: JSON (or YAML) documents attached to an agent, a role, or everyone. */

export type Subject = { agentId: string } | { role: string } | { all: true };
export type Day = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";
export type Window = "minute" | "hour" | "day";

/** A condition on one parameter (or derived field such as `url.host`). Every listed check must pass. */
export interface Guard {
  equals?: string | number | boolean;
  /** Strings may use `*.example.org` to match any subdomain. */
  oneOf?: (string | number | boolean)[];
  notOneOf?: (string | number | boolean)[];
  pattern?: string;
  maxLength?: number;
  min?: number;
  max?: number;
  /** For arrays (e.g. `recipients`): at most this many items. */
  maxItems?: number;
  /** A missing value fails the guard unless this is true. */
  optional?: boolean;
}

export interface Quota {
  limit: number;
  per: Window;
  /** Calendar windows in this zone (default UTC). */
  timeZone?: string;
  /** Role policies: one count shared by every agent of the role, instead of one per agent. */
  shared?: boolean;
  /** Whether a call whose upstream failed still counts (default: the gateway's POLICY_COUNT_FAILED_CALLS). */
  countFailures?: boolean;
  /**
   * `calls` (default): each call takes one unit. `tokens`: a budget of model tokens (input + output,
   * from the answer's usage): a call is let in while the window has tokens left, and what it used is
   * counted when it answers, so the last call may overshoot the budget by its own size.
   */
  unit?: "calls" | "tokens";
}

export interface Schedule {
  days?: Day[];
  /** `HH:MM-HH:MM`, end exclusive; an end before the start wraps past midnight. */
  hours?: string;
  timeZone?: string;
}

export interface RateLimit {
  perSecond: number;
  burst?: number;
  /** Whose bucket: each agent (default), each agent per tool, each role, or everyone together. */
  per?: "agent" | "agentTool" | "role" | "all";
}

/**
 * On an allow rule: a call this rule would refuse (its guards, intents or schedule fail) is held for
 * a person's approval instead; a rule with no guards, intents or schedule holds every call it covers.
 */
export interface RequireApproval {
  /** How long the approval may wait for a decision (default 3600, at most 7 days). */
  ttlSeconds?: number;
  /** Free-form labels of who should decide (shown and recorded; not enforced). */
  approvers?: string[];
  /** Where to notify (besides APPROVAL_WEBHOOK_URL); judged by the SSRF guard when it is sent. */
  webhookUrl?: string;
  /** `slack` sends a Slack-compatible body (a `text` field); `json` (default) the structured one. */
  webhookFormat?: "json" | "slack";
}

export const APPROVAL_TTL_DEFAULT_SECONDS = 3600;
export const APPROVAL_TTL_MAX_SECONDS = 7 * 86_400;

export interface Rule {
  /** Stable name of the rule (keeps its counters when rules are reordered). */
  id?: string;
  effect: "allow" | "deny";
  scopes: string[];
  description?: string;
  intents?: string[];
  guards?: Record<string, Guard>;
  quota?: Quota;
  schedule?: Schedule;
  rateLimit?: RateLimit;
  requireApproval?: RequireApproval;
}

export interface PolicyDocument {
  name: string;
  description?: string;
  subject: Subject;
  enabled?: boolean;
  /**
   * The intents the subject may claim. An agent names its intent itself when it asks for a token,
   * so a rule's `intents` only bind once a policy says which intents may be claimed at all.
   */
  claimableIntents?: string[];
  rules: Rule[];
}

/** A stored policy at one version, as the evaluator sees it. */
export interface Policy {
  id: string;
  version: number;
  hash: string;
  document: PolicyDocument;
}

export type DenialReason = "scope_denied" | "intent_required" | "guard_failed" | "quota_exceeded" | "off_hours" | "rate_limited" | "agent_suspended";

export interface RuleRef {
  policyId: string;
  policyName: string;
  version: number;
  rule: number;
  ruleId?: string;
}

/** One line of an explanation: how a rule related to the call. */
export interface TraceEntry extends RuleRef {
  effect: "allow" | "deny";
  kind: "grant" | "deny" | "constraint";
  outcome: "granted" | "denied" | "passed" | "failed" | "not_applicable" | "pending" | "approval_required";
  why: string;
}

/** A stateful limit the call must fit in; the counters decide it atomically. */
export interface LimitCheck {
  kind: "quota" | "rate";
  key: string;
  ref: RuleRef;
  /** quota: calls allowed in the window; rate: bucket size (burst). */
  limit: number;
  /** rate: tokens added per second. */
  perSecond?: number;
  /** quota: window end (ms since epoch), for Retry-After and key expiry. */
  windowEndMs?: number;
  countFailures?: boolean;
  /** quota: counted in model tokens after the answer instead of one per call (see Quota.unit). */
  unit?: "tokens";
}

/** Why and how long an allowed call waits for a person (the rules that asked for it, merged). */
export interface ApprovalRequirement {
  /** The first rule that asked. */
  rule: RuleRef;
  /** The shortest ttl of the rules that asked. */
  ttlSeconds: number;
  approvers: string[];
  /** For people: what the rule would otherwise have refused. */
  reason: string;
  webhooks: { url: string; format: "json" | "slack" }[];
}

export type Decision =
  | { allow: true; limits: LimitCheck[]; trace: TraceEntry[]; /** Set when the call may go only once a person approves it. */ approval?: ApprovalRequirement }
  | { allow: false; reason: DenialReason; message: string; rule?: RuleRef; retryAfterSeconds?: number; trace: TraceEntry[] };
