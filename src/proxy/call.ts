import type { GatewayError } from "../errors/index.js";
import type { VerifiedToken } from "../identity/index.js";
import type { ApprovalRequirement, LimitCheck } from "../policy/types.js";
import type { ResolvedAction, UpstreamReply } from "./catalog.js";

/** The ways into the road. A closed set: it labels metrics and the audit trail. */
export const DOORS = ["rest", "job", "approval", "mcp", "openai"] as const;
export type Door = (typeof DOORS)[number];
/**
 * The live doors whose callers can be told "held for approval" (202 with the approval, or the MCP
 * tool result saying so). The OpenAI-compatible door cannot say it in OpenAI's shape: a call there
 * that needs approval is refused (`approval_required`) and nothing is stored.
 */
export const HOLDING_DOORS: readonly Door[] = ["rest", "mcp"];

export type CacheStatus = "hit" | "miss" | "bypass" | "stale" | "none";

/**
 * How a call proves who sends it. A live door carries the bearer token as received; a deferred door
 * (a job, an approved call) carries the token verified when the work was accepted, which the
 * authenticate stage checks again by id (revocation, agent status) when the work runs. A door that
 * must verify the token before it can even parse the call (the MCP door answers a bad token with its
 * HTTP-level 401 challenge, and `tools/list` needs the caller too) hands over what
 * `IdentityService.verifyAccessToken` returned for this very request: verifying it again would
 * count one call as two token validations and cost the check twice.
 */
export type CallerProof =
  | { kind: "bearer"; rawToken: string | undefined }
  | { kind: "verified"; principal: VerifiedToken }
  | { kind: "accepted"; tokenId: string | undefined; agentId: string; scopes: string[]; intent: string | undefined };

/** Quota units taken for a call: plain data, so work accepted on one instance can be refunded on another. */
export interface QuotaCharge {
  quotas: LimitCheck[];
}

/**
 * One tool call as it travels the road. Stages never mutate it: a stage that learns something
 * (who the caller is, the resolved action, the credential) hands the next stage a new object.
 */
export interface ToolCall {
  readonly door: Door;
  readonly tool: string;
  readonly action: string;
  readonly params: Record<string, unknown>;
  readonly correlationId: string;
  readonly proof: CallerProof;
  readonly idempotencyKey?: string;
  readonly cacheMode: "default" | "bypass";
  readonly traceparent?: string;
  /** The door pipes the answer to the client as it arrives (the OpenAI-compatible door's `stream: true`). */
  readonly streaming?: boolean;
  /** Where a deferred outcome (an approved call's result) is reported, signed; judged by the SSRF guard when given. */
  readonly callbackUrl?: string;
  /**
   * `now` for a live call; `accept` when a deferred door (jobs, approvals) accepts work to run
   * later; `run` when that work runs. The road checks every phase; the authorize stage counts rate
   * limits at `accept` and quotas at `run` (both at `now`).
   */
  readonly phase: "now" | "accept" | "run";
  // Learnt on the way:
  readonly principal?: VerifiedToken;
  readonly resolved?: ResolvedAction;
  readonly credential?: string;
  /** Set by authorize: policy allows the call only once a person approves it; the hold stage keeps it. */
  readonly heldFor?: ApprovalRequirement;
  /** Set by the retry stage: when the whole call (every attempt and backoff) must be over. */
  readonly deadlineAt?: number;
  /** Set by the attempt stage: aborts the adapter's request. */
  readonly signal?: AbortSignal;
  /** Set by the authorize stage: policy applied again to a redirect target before the adapter follows it. */
  readonly checkRedirect?: (target: string) => void;
  /** Set by the authorize stage: whose cached answers this call may share (default: the caller's role). */
  readonly cacheScope?: string;
}

/** What the upstream (or the cache, or an idempotent replay) answered. */
export interface Execution {
  reply: UpstreamReply;
  attempts: number;
  cache: CacheStatus;
  upstreamMs: number;
  replayed?: boolean;
}

/**
 * Work a deferred door (jobs, approvals) accepted, kept (sealed) until it runs: the call and the
 * token it was accepted with, which the road checks again by id when it runs.
 */
export interface AcceptedCall {
  tool: string;
  action: string;
  params: Record<string, unknown>;
  agentId: string;
  /** Absent on work accepted before tokens were re-checked at run time (only the agent is checked then). */
  tokenId?: string;
  scopes?: string[];
  intent?: string;
  idempotencyKey?: string;
}

/** What an agent is told about a call held for approval (202). */
export interface HeldApproval {
  id: string;
  status: "pending";
  expiresAt: string;
  /** SHA-256 of the canonical call (agent, tool, action, parameters): what the approval is bound to. */
  argsHash: string;
}

/**
 * How a call ended, as a value. Each kind is produced by the stage that knows it, so no one
 * downstream has to guess from an error code:
 * - `answered`: the upstream, the cache or an idempotent replay answered;
 * - `queued`: a deferred door accepted the work (a job id);
 * - `held`: policy wants a person's approval; the call is stored and nothing was sent (audit `pending_approval`);
 * - `denied`: a check said no (token, policy, limits, SSRF judge): audit decision `deny`;
 * - `refused`: the call could not go (bad input, unknown tool, no credential, open breaker, key in
 *   flight): never reached the upstream, so nothing counts against quotas;
 * - `failed`: the call reached the upstream (or tried to connect) and failed.
 */
export type CallOutcome = (
  | { kind: "answered"; execution: Execution }
  | { kind: "queued"; jobId: string }
  | { kind: "held"; approval: HeldApproval }
  | { kind: "denied"; error: GatewayError; stage: string; /** The caller proved nothing (no token, not one of ours). */ anonymous?: true }
  | { kind: "refused"; error: GatewayError; stage: string }
  | { kind: "failed"; error: GatewayError; attempts: number; upstreamMs: number }
) & {
  /** Who the call was for, once known: authenticate sets it on the way back, for audit and the door. */
  principal?: VerifiedToken;
};

export type Next = (call: ToolCall) => Promise<CallOutcome>;

/** One stage of the road: a name and one function that may call `next` (at most once per attempt). */
export interface Stage {
  readonly name: string;
  run(call: ToolCall, next: Next): Promise<CallOutcome>;
}

/** Builds a stage from a named function (the name is what the stage list and the docs show). */
export const stage = (name: string, run: Stage["run"]): Stage => ({ name, run });

/**
 * Composes stages into one function, first stage outermost (undici's `compose`, cockatiel's `wrap`).
 * @throws Error when two stages share a name (the list is data; a duplicate is a wiring mistake)
 */
export function compose(stages: readonly Stage[], terminal: Next): Next {
  const names = new Set<string>();
  for (const s of stages) {
    if (names.has(s.name)) throw new Error(`stage "${s.name}" appears twice in the road`);
    names.add(s.name);
  }
  return stages.reduceRight<Next>((next, s) => (call) => s.run(call, next), terminal);
}

export const denied = (error: GatewayError, stageName: string): CallOutcome => ({ kind: "denied", error, stage: stageName });
export const refused = (error: GatewayError, stageName: string): CallOutcome => ({ kind: "refused", error, stage: stageName });
