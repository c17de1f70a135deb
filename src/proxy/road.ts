import { createHash } from "node:crypto";
import { canonicalJson } from "../util/canonical-json.js";
export { canonicalJson };
import type { AuditLog } from "../audit/index.js";
import { GatewayError, isGatewayError } from "../errors/index.js";
import type { IdentityService, VerifiedToken } from "../identity/index.js";
import type { CredentialVault, Redactor } from "../vault/index.js";
import type { ResolvedAction, ToolCatalog, UpstreamReply } from "./catalog.js";

/** One tool call as it enters the road. */
export interface ProxyInput {
  tool: string;
  action: string;
  params: Record<string, unknown>;
  rawToken: string | undefined;
  correlationId: string;
  idempotencyKey?: string;
  /** `bypass` skips the response cache for this call. */
  cacheMode?: "default" | "bypass";
  traceparent?: string;
}

export type CacheStatus = "hit" | "miss" | "bypass" | "stale" | "none";

export interface ProxyMeta {
  correlationId: string;
  tool: string;
  action: string;
  cache: CacheStatus;
  attempts: number;
  upstreamMs: number;
  gatewayMs: number;
  /** The answer is the stored result of an earlier call with the same Idempotency-Key. */
  replayed?: boolean;
}

export interface ProxyOutput {
  data: unknown;
  meta: ProxyMeta;
  token: VerifiedToken;
}

/** What the policy stage is given. */
export interface CallToAuthorize {
  tool: string;
  action: string;
  params: Record<string, unknown>;
}

/**
 * The policy + limits stage. Resolves when the call may go on (returning what to do once the
 * upstream has answered), throws a GatewayError with the denial otherwise.
 */
export type Authorizer = (token: VerifiedToken, call: CallToAuthorize) => Promise<AuthorizeGrant>;
export interface AuthorizeGrant {
  /** Called after the upstream failed, so counters configured not to count failures can refund. */
  upstreamFailed?(): Promise<void>;
  /** Called when the call was refused before reaching the upstream (missing credential, open breaker, SSRF): nothing counts. */
  callNotSent?(): Promise<void>;
}

/** Refusals that mean the upstream was never called. */
const NOT_SENT = new Set(["circuit_open", "ssrf_blocked", "invalid_request", "idempotency_conflict"]);

export interface ExecuteContext {
  correlationId: string;
  traceparent?: string;
  cacheMode: "default" | "bypass";
  idempotencyKey?: string;
  /** Whatever in the caller's identity changes the answer (part of the cache key). */
  cacheScope: string;
  agentId: string;
  credential: string | undefined;
}

export interface ExecuteResult {
  reply: UpstreamReply;
  attempts: number;
  cache: CacheStatus;
  upstreamMs: number;
  replayed?: boolean;
}

/** The resilience stages around the adapter call (cache, single-flight, retry, breaker, timeout). */
export type Executor = (action: ResolvedAction, params: Record<string, unknown>, ctx: ExecuteContext) => Promise<ExecuteResult>;

/** Hooks for metrics; every label they receive is bounded (tool, action, status, reason). */
export interface RoadEvents {
  callFinished?(e: { tool: string; action: string; status: number; durationMs: number; upstreamMs: number; cache: CacheStatus; attempts: number; errorCode?: string }): void;
  denied?(e: { tool: string; action: string; reason: string }): void;
}

export interface RoadDeps {
  catalog: ToolCatalog;
  identity: IdentityService;
  vault: CredentialVault;
  audit: AuditLog;
  redactor: Redactor;
  authorize: Authorizer;
  execute: Executor;
  now: () => number;
  events?: RoadEvents;
}

const DENIAL_CODES = new Set(["policy_denied", "scope_denied", "intent_required", "guard_failed", "quota_exceeded", "off_hours", "rate_limited", "agent_suspended", "token_scope_exceeded", "ssrf_blocked"]);

/** A stable hash of the parameters for the audit trail: never the parameters themselves. */
export function paramsFingerprint(params: unknown): string {
  return createHash("sha256").update(canonicalJson(params)).digest("base64url").slice(0, 22);
}


/** A call that passed every check before the upstream: what a job keeps to run it later. */
export interface AdmittedCall {
  tool: string;
  action: string;
  params: Record<string, unknown>;
  agentId: string;
  role: string;
  idempotencyKey?: string;
}

export interface ProxyRoad {
  /** The synchronous call: admit, execute, answer. */
  handle(input: ProxyInput): Promise<ProxyOutput>;
  /** Only the checks (validation, token, policy, limits, credential present), for calls queued as jobs. */
  admit(input: ProxyInput): Promise<{ call: AdmittedCall; token: VerifiedToken; grant: AuthorizeGrant }>;
  /** Executes an admitted call (a job's run), with audit and metrics like any call. */
  runAdmitted(call: AdmittedCall, correlationId: string, grant?: AuthorizeGrant): Promise<{ data: unknown; meta: ProxyMeta }>;
}

interface Outcome {
  token?: VerifiedToken;
  agentId?: string;
  execution?: ExecuteResult;
}

/**
 * The proxy road: validate → authenticate → authorize (policy + limits) → execute (resilience +
 * adapter with its credential) → audit and metrics. It reads top to bottom; each stage is its own
 * module, handed in by the composition root. `admit` and `runAdmitted` are the same road cut in
 * two, so an async job is checked when it is accepted and executed later by any worker.
 */
export function createProxyRoad(deps: RoadDeps): ProxyRoad {
  async function admitStages(input: ProxyInput, outcome: Outcome) {
    const action = deps.catalog.resolve(input.tool, input.action, input.params);
    const token = await deps.identity.verifyAccessToken(input.rawToken);
    outcome.token = token;
    outcome.agentId = token.agentId;
    const grant = await deps.authorize(token, { tool: action.tool, action: action.action, params: input.params });
    if (action.needsCredential && deps.vault.secretFor(action.tool) === undefined) {
      await grant.callNotSent?.().catch(() => undefined);
      throw new GatewayError("credential_missing", `no credential is stored for ${action.tool}: an admin must add one (POST /api/credentials)`);
    }
    return { action, token, grant };
  }

  async function executeStages(action: ResolvedAction, input: ProxyInput, who: { agentId: string; role: string }, grant: AuthorizeGrant | undefined, outcome: Outcome, startedMs: number) {
    const credential = deps.vault.secretFor(action.tool);
    if (action.needsCredential && credential === undefined) {
      throw new GatewayError("credential_missing", `no credential is stored for ${action.tool}: an admin must add one (POST /api/credentials)`);
    }
    const ctx: ExecuteContext = {
      correlationId: input.correlationId,
      cacheMode: input.cacheMode ?? "default",
      cacheScope: who.role,
      agentId: who.agentId,
      credential,
    };
    if (input.traceparent !== undefined) ctx.traceparent = input.traceparent;
    if (input.idempotencyKey !== undefined) ctx.idempotencyKey = input.idempotencyKey;
    let execution: ExecuteResult;
    try {
      execution = await deps.execute(action, input.params, ctx);
    } catch (err) {
      const notSent = isGatewayError(err) && NOT_SENT.has(err.code);
      await (notSent ? grant?.callNotSent?.() : grant?.upstreamFailed?.())?.catch(() => undefined);
      throw err;
    }
    outcome.execution = execution;
    const gatewayMs = performance.now() - startedMs - execution.upstreamMs;
    return {
      // An upstream that saw the credential may echo it back: scrub before it leaves.
      data: action.needsCredential ? deps.redactor.redactValue(execution.reply.body) : execution.reply.body,
      meta: {
        correlationId: input.correlationId,
        tool: action.tool,
        action: action.action,
        cache: execution.cache,
        attempts: execution.attempts,
        upstreamMs: round(execution.upstreamMs),
        gatewayMs: round(Math.max(0, gatewayMs)),
        ...(execution.replayed ? { replayed: true } : {}),
      } satisfies ProxyMeta,
    };
  }

  /** Runs `work` with the audit record, the metrics events and the error scrubbing every call gets. */
  async function audited<T>(input: ProxyInput, okStatus: number, work: (outcome: Outcome, startedMs: number) => Promise<T>): Promise<T> {
    const startedMs = performance.now();
    const outcome: Outcome = {};
    let status = okStatus;
    let errorCode: string | undefined;
    let decision: "allow" | "deny" | "error" = "allow";
    try {
      return await work(outcome, startedMs);
    } catch (err) {
      const error = isGatewayError(err) ? err : new GatewayError("internal_error", "the gateway failed to handle this call", { cause: err });
      status = error.status;
      errorCode = error.code;
      decision = DENIAL_CODES.has(error.code) || error.code.startsWith("token_") ? "deny" : "error";
      if (DENIAL_CODES.has(error.code)) deps.events?.denied?.({ tool: input.tool, action: input.action, reason: String(error.details?.reason ?? error.code) });
      // An upstream may echo what it was sent: never let a credential out through its message.
      throw error.code.startsWith("upstream") ? scrubbed(error, deps.redactor) : error;
    } finally {
      const durationMs = performance.now() - startedMs;
      const { execution } = outcome;
      const upstreamMs = execution?.upstreamMs ?? 0;
      deps.audit.record({
        correlationId: input.correlationId,
        agentId: outcome.agentId ?? null,
        tool: input.tool.slice(0, 64),
        action: input.action.slice(0, 64),
        decision,
        reason: errorCode ?? null,
        status,
        latencyMs: round(durationMs),
        upstreamMs: execution === undefined ? null : round(upstreamMs),
        cache: execution?.cache ?? null,
        attempts: execution?.attempts ?? null,
        paramsHash: paramsFingerprint(input.params),
      });
      const finished: Parameters<NonNullable<RoadEvents["callFinished"]>>[0] = {
        tool: input.tool,
        action: input.action,
        status,
        durationMs,
        upstreamMs,
        cache: execution?.cache ?? "none",
        attempts: execution?.attempts ?? 0,
      };
      if (errorCode !== undefined) finished.errorCode = errorCode;
      deps.events?.callFinished?.(finished);
    }
  }

  return {
    handle(input) {
      return audited(input, 200, async (outcome, startedMs) => {
        const { action, token, grant } = await admitStages(input, outcome);
        const out = await executeStages(action, input, token, grant, outcome, startedMs);
        return { ...out, token };
      });
    },
    admit(input) {
      return audited(input, 202, async (outcome) => {
        const { action, token, grant } = await admitStages(input, outcome);
        const call: AdmittedCall = { tool: action.tool, action: action.action, params: input.params, agentId: token.agentId, role: token.role };
        if (input.idempotencyKey !== undefined) call.idempotencyKey = input.idempotencyKey;
        return { call, token, grant };
      });
    },
    runAdmitted(call, correlationId, grant) {
      const input: ProxyInput = { tool: call.tool, action: call.action, params: call.params, rawToken: undefined, correlationId };
      if (call.idempotencyKey !== undefined) input.idempotencyKey = call.idempotencyKey;
      return audited(input, 200, async (outcome, startedMs) => {
        outcome.agentId = call.agentId;
        const action = deps.catalog.resolve(call.tool, call.action, call.params);
        return executeStages(action, input, call, grant, outcome, startedMs);
      });
    },
  };
}

function scrubbed(error: GatewayError, redactor: Redactor): GatewayError {
  const message = redactor.redact(error.message);
  const details = error.details === undefined ? undefined : redactor.redactValue(error.details);
  if (message === error.message && details === error.details) return error;
  const options: ConstructorParameters<typeof GatewayError>[2] = { status: error.status };
  if (details !== undefined) options.details = details;
  if (error.retryAfterSeconds !== undefined) options.retryAfterSeconds = error.retryAfterSeconds;
  return new GatewayError(error.code, message, options);
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
