import { Transform, type Readable } from "node:stream";
import type { AuditEntry } from "../audit/index.js";
import { GatewayError, isGatewayError } from "../errors/index.js";
import type { IdentityService, VerifiedToken } from "../identity/index.js";
import { paramsFingerprint } from "../resilience/executor.js";
import { exceedsBounds, PARAMS_LIMITS } from "../util/canonical-json.js";
import type { CredentialVault, Redactor } from "../vault/index.js";
import { withoutRaw, type ToolCatalog, type UpstreamReply } from "./catalog.js";
import type { ApprovalRequirement } from "../policy/types.js";
import {
  denied,
  HOLDING_DOORS,
  refused,
  stage,
  type CacheStatus,
  type CallOutcome,
  type Door,
  type AcceptedCall,
  type HeldApproval,
  type Next,
  type QuotaCharge,
  type Stage,
  type ToolCall,
} from "./call.js";

/** What the authorize stage is given about the call. */
export interface CallToAuthorize {
  tool: string;
  action: string;
  params: Record<string, unknown>;
}

/**
 * What to do with a call policy would allow only once a person approves it: `hold` it (a live
 * call: rate limits are counted now, quotas when it runs), treat the requirement as `satisfied`
 * (the approved call itself, run by the approval door), or `refuse` it (a job: nobody is asked).
 */
export type ApprovalHandling = "hold" | "satisfied" | "refuse";

/** What the authorize stage charged, and the approval the call waits for when it was held. */
export interface Charge extends QuotaCharge {
  heldFor?: ApprovalRequirement;
}

/**
 * The policy and limits port behind the authorize stage. `charge` decides and counts (throwing a
 * GatewayError denial), returning what it counted; `refund` gives it back.
 */
export interface Authorizer {
  /**
   * `counted`: `all` for a live call, `rate` when deferred work is accepted, `quota` when it runs.
   * `approval`: see ApprovalHandling (absent: `refuse`). @throws GatewayError the denial (`approval_required` when refused for want of approval)
   */
  charge(token: VerifiedToken, call: CallToAuthorize, counted: "all" | "rate" | "quota", approval?: ApprovalHandling): Promise<Charge>;
  /** `not_sent`: the call never left (every quota gives back); `upstream_failed`: only quotas that do not count failures. */
  refund(charge: QuotaCharge, why: "not_sent" | "upstream_failed"): Promise<void>;
  /** Counts the model tokens an answer reported against the charge's token budgets. */
  recordUsage?(charge: QuotaCharge, tokens: number): Promise<void>;
  /** For a call an adapter may redirect (it has a `url`): policy on every hop. Absent when policy is off. */
  redirectCheck?(token: VerifiedToken, call: CallToAuthorize): RedirectCheck | undefined;
}

/**
 * `check` runs before each redirect is followed and throws a GatewayError when policy refuses the
 * target; `cacheScope` names everyone whose policies would judge the same hops alike, the widest an
 * answer that followed them may be shared through the cache.
 */
export interface RedirectCheck {
  readonly check: (target: string) => void;
  cacheScope: string;
}

/** Hooks for metrics; every label they receive is bounded (door, tool, action, status, reason). */
export interface RoadEvents {
  callFinished?(e: {
    door: Door;
    tool: string;
    action: string;
    status: number;
    durationMs: number;
    upstreamMs: number;
    cache: CacheStatus;
    attempts: number;
    errorCode?: string;
    /** Model tokens, when the answer reports OpenAI-style usage. */ usage?: { input: number; output: number };
  }): void;
  denied?(e: { door: Door; tool: string; action: string; reason: string }): void;
  /** A call refused before a valid token: counted, not audited one by one. */
  unauthenticated?(e: { door: Door; code: string }): void;
}

/** The audit port: whatever `record` returns is awaited before the call is answered (a durable audit may make it a promise). */
export interface AuditSink {
  record(entry: AuditEntry): unknown;
  /** Throws (a 503) when calls must be refused because the trail cannot be written (AUDIT_FAILURE_MODE=closed). */
  assertWritable?(): void;
  /** The trail's fingerprint of the parameters (an HMAC with the audit key); never throws. */
  paramsHash?(params: unknown): string | null;
}

const PROVED_NOTHING = new Set(["token_missing", "token_invalid", "token_too_large"]);
const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** The HTTP status an outcome answers with: 200 answered, 202 queued or held, the error's status otherwise. */
export function httpStatusOf(outcome: CallOutcome): number {
  if (outcome.kind === "answered") return 200;
  if (outcome.kind === "queued" || outcome.kind === "held") return 202;
  return outcome.error.status;
}

/**
 * Outermost: times the call, writes its audit record and metrics from the typed outcome, and turns
 * an unexpected exception into `internal_error`. Calls refused for want of a valid token are not
 * audited one by one (anyone can send them): they are counted, and one record per `sampleMs` keeps
 * a trace of them in the audit trail.
 */
export function observe(deps: { audit: AuditSink; events?: RoadEvents; anonymousSampleMs?: number; now: () => number }): Stage {
  let lastAnonymousRecord = -Infinity;
  return stage("observe", async (call, next) => {
    const startedMs = performance.now();
    let outcome: CallOutcome;
    try {
      // A trail that cannot be written refuses the call before anything runs (closed mode); the refusal is recorded like any.
      deps.audit.assertWritable?.();
      outcome = await next(call);
    } catch (err) {
      outcome = {
        kind: "failed",
        error: isGatewayError(err) ? err : new GatewayError("internal_error", "the gateway failed to handle this call", { cause: err }),
        attempts: 0,
        upstreamMs: 0,
      };
    }
    const anonymous = outcome.kind === "denied" && outcome.anonymous === true;
    if (outcome.kind === "denied") {
      if (anonymous) deps.events?.unauthenticated?.({ door: call.door, code: outcome.error.code });
      else
        deps.events?.denied?.({ door: call.door, tool: call.tool, action: call.action, reason: String(outcome.error.details?.reason ?? outcome.error.code) });
    }
    const sampled = anonymous && deps.now() - lastAnonymousRecord >= (deps.anonymousSampleMs ?? 1000);
    if (sampled) lastAnonymousRecord = deps.now();

    /** The audit record and the metrics event of the call; for a stream, written when it ends. */
    const finish = async (usage: { input: number; output: number } | undefined, streamError?: string) => {
      const durationMs = performance.now() - startedMs;
      const status = httpStatusOf(outcome);
      const execution = outcome.kind === "answered" ? outcome.execution : undefined;
      const error = outcome.kind === "answered" || outcome.kind === "queued" || outcome.kind === "held" ? undefined : outcome.error;
      // Awaited after the metrics event: the answer waits for the record to be durable, and a record
      // that cannot be written (closed mode) turns the answer into a 503 without losing the count.
      let recorded: unknown;
      if (!anonymous || sampled) {
        // Built only from values already computed and a fingerprint that cannot throw: the record is
        // written whatever the call did.
        recorded = deps.audit.record({
          correlationId: call.correlationId,
          agentId: outcome.principal?.agentId ?? (call.proof.kind === "accepted" ? call.proof.agentId : null),
          tool: call.tool.slice(0, 64),
          action: call.action.slice(0, 64),
          decision:
            outcome.kind === "answered" || outcome.kind === "queued"
              ? "allow"
              : outcome.kind === "held"
                ? "pending_approval"
                : outcome.kind === "denied"
                  ? "deny"
                  : "error",
          reason: error?.code ?? streamError ?? null,
          status,
          latencyMs: round(durationMs),
          upstreamMs: execution === undefined ? (outcome.kind === "failed" ? round(outcome.upstreamMs) : null) : round(execution.upstreamMs),
          cache: execution?.cache ?? null,
          attempts: execution?.attempts ?? (outcome.kind === "failed" ? outcome.attempts : null),
          // An anonymous caller's parameters are not worth hashing (nor walking).
          paramsHash: anonymous ? null : deps.audit.paramsHash ? deps.audit.paramsHash(call.params) : paramsFingerprint(call.params),
          door: call.door,
          // The tokens the answer reported, as counted in gateway_llm_tokens_total (none for a cached or replayed answer).
          ...(auditableUsage(usage) ? { usage: { promptTokens: usage.input, completionTokens: usage.output, totalTokens: usage.input + usage.output } } : {}),
        });
      }
      const finished: Parameters<NonNullable<RoadEvents["callFinished"]>>[0] = {
        door: call.door,
        tool: call.tool,
        action: call.action,
        status,
        durationMs,
        upstreamMs: execution?.upstreamMs ?? (outcome.kind === "failed" ? outcome.upstreamMs : 0),
        cache: execution?.cache ?? "none",
        attempts: execution?.attempts ?? (outcome.kind === "failed" ? outcome.attempts : 0),
      };
      if (error !== undefined) finished.errorCode = error.code;
      if (usage !== undefined) finished.usage = usage;
      deps.events?.callFinished?.(finished);
      await recorded;
    };

    if (outcome.kind === "answered" && outcome.execution.reply.stream !== undefined) {
      // A stream is audited and metered when it ends, with the usage its last events report.
      const stream = whenStreamEnds(outcome.execution.reply.stream, finish);
      return { ...outcome, execution: { ...outcome.execution, reply: { ...outcome.execution.reply, stream } } };
    }
    const execution = outcome.kind === "answered" ? outcome.execution : undefined;
    await finish(execution !== undefined && execution.cache !== "hit" && !execution.replayed ? modelUsageOf(execution.reply.body) : undefined);
    return outcome;
  });
}

/**
 * Passes a server-sent-event stream through unchanged while noting the `usage` its events report,
 * and calls `finish` once: before the last byte goes out when the stream ends (so the audit record is
 * written before the client sees the end), or when it breaks or the client goes away.
 */
export function whenStreamEnds(
  source: Readable,
  finish: (usage: { input: number; output: number } | undefined, streamError?: string) => Promise<void>,
): Readable {
  let usage: { input: number; output: number } | undefined;
  let pending = "";
  let finished = false;
  const once = (why?: string) => {
    if (finished) return Promise.resolve();
    finished = true;
    return finish(usage, why).catch(() => undefined);
  };
  const note = (line: string) => {
    if (!line.startsWith("data:") || !line.includes('"usage"')) return;
    try {
      usage = modelUsageOf(JSON.parse(line.slice(5))) ?? usage;
    } catch {
      // not JSON ([DONE], a partial line): nothing to note
    }
  };
  const tap = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      if (pending.length > 1_048_576) pending = "";
      for (const line of lines) note(line);
      callback(null, chunk);
    },
    flush(callback) {
      note(pending);
      void once().then(() => callback());
    },
  });
  source.on("error", (err) => tap.destroy(err));
  tap.on("close", () => {
    if (!finished) void once(tap.errored ? "upstream_stream_broken" : "client_closed");
    // The client went away: stop reading from (and so cancel) the upstream.
    if (!source.destroyed) source.destroy();
  });
  return source.pipe(tap);
}

/**
 * Who is calling, before anything about tools, parameters or policy is looked at: a live call's
 * bearer token is verified (or, when its door already verified it for this request, that verdict is
 * taken as is: one call, one validation); deferred work's accepted token is checked again by id
 * (revocation, agent status).
 */
export function authenticate(deps: { identity: IdentityService }): Stage {
  return stage("authenticate", async (call, next) => {
    let principal: VerifiedToken;
    try {
      const proof = call.proof;
      principal =
        proof.kind === "bearer"
          ? await deps.identity.verifyAccessToken(proof.rawToken)
          : proof.kind === "verified"
            ? proof.principal
            : await deps.identity.recheckAcceptedToken(proof);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      // A caller that proved nothing (no token, not one of ours) is anonymous: counted, not audited per call.
      return { kind: "denied", error: err, stage: "authenticate", ...(PROVED_NOTHING.has(err.code) ? { anonymous: true } : {}) };
    }
    return { ...(await next({ ...call, principal })), principal };
  });
}

/**
 * Finds the tool action and validates the parameters against its schema. Depth and size are
 * bounded first, iteratively, so nothing after (schema validation, fingerprints, adapters) walks an
 * unbounded structure.
 */
export function resolve(deps: { catalog: ToolCatalog }): Stage {
  return stage("resolve", async (call, next) => {
    const breach = exceedsBounds(call.params);
    if (breach !== undefined) {
      const limit = breach === "depth" ? `nest deeper than ${PARAMS_LIMITS.maxDepth} levels` : `hold more than ${PARAMS_LIMITS.maxNodes} values`;
      return refused(new GatewayError("invalid_request", `params must not ${limit}`, { details: { limit: breach } }), "resolve");
    }
    let resolved;
    try {
      resolved = deps.catalog.resolve(call.tool, call.action, call.params);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      return refused(err, "resolve");
    }
    return next({ ...call, resolved });
  });
}

/**
 * Policy (scopes, rules, guards, schedules) and limits. Counts the call, and gives back what it
 * counted when the outcome says the call never left (or failed, for quotas that do not count
 * failures): the one place that charges and refunds, on every door.
 */
export function authorize(deps: { authorizer: Authorizer; onRefundError?: (err: unknown) => void }): Stage {
  return stage("authorize", async (call, next) => {
    const principal = principalOf(call);
    const counted = call.phase === "accept" ? "rate" : call.phase === "run" ? "quota" : "all";
    // Only a live call can wait for a person; the approval door's run is the approved call itself.
    const approval: ApprovalHandling =
      call.phase === "now" && HOLDING_DOORS.includes(call.door) ? "hold" : call.phase === "run" && call.door === "approval" ? "satisfied" : "refuse";
    let charge: Charge;
    try {
      charge = await deps.authorizer.charge(principal, { tool: call.tool, action: call.action, params: call.params }, counted, approval);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      return denied(err, "authorize");
    }
    const redirects = deps.authorizer.redirectCheck?.(principal, { tool: call.tool, action: call.action, params: call.params });
    const marked = charge.heldFor === undefined ? call : { ...call, heldFor: charge.heldFor };
    // An answer that followed redirects was judged by these policies: share it only with those they bind alike.
    const outcome = await next(redirects === undefined ? marked : { ...marked, checkRedirect: redirects.check, cacheScope: redirects.cacheScope });
    const refund = outcome.kind === "refused" || outcome.kind === "denied" ? "not_sent" : outcome.kind === "failed" ? "upstream_failed" : undefined;
    if (refund !== undefined && charge.quotas.length > 0) await deps.authorizer.refund(charge, refund).catch((err: unknown) => deps.onRefundError?.(err));
    const budgets = charge.quotas.some((q) => q.unit === "tokens");
    if (outcome.kind !== "answered" || !budgets || deps.authorizer.recordUsage === undefined || outcome.execution.replayed || outcome.execution.cache === "hit")
      return outcome;
    const count = (usage: { input: number; output: number } | undefined) =>
      usage === undefined
        ? Promise.resolve()
        : deps.authorizer.recordUsage!(charge, usage.input + usage.output).catch((err: unknown) => deps.onRefundError?.(err));
    const { reply } = outcome.execution;
    if (reply.stream === undefined) {
      await count(modelUsageOf(reply.body));
      return outcome;
    }
    // A streamed answer reports its usage in its last events: counted when it ends.
    return { ...outcome, execution: { ...outcome.execution, reply: { ...reply, stream: whenStreamEnds(reply.stream, (usage) => count(usage)) } } };
  });
}

/** The tool's credential from the vault; a tool that needs one and has none is refused with 424. */
export function credential(deps: { vault: CredentialVault }): Stage {
  return stage("credential", async (call, next) => {
    const action = resolvedOf(call);
    const secret = deps.vault.secretFor(action.tool);
    if (action.needsCredential && secret === undefined) {
      return refused(
        new GatewayError("credential_missing", `no credential is stored for ${action.tool}: an admin must add one (POST /api/credentials)`),
        "credential",
      );
    }
    return next(secret === undefined ? call : { ...call, credential: secret });
  });
}

/** Keeps a held call until a person decides (the approvals service): sealed parameters, the hash of the exact call. */
export interface ApprovalHolder {
  /** Stores the approval; returns what the agent is told. */
  hold(call: HeldCall): Promise<HeldApproval>;
}

/** A call the authorize stage held for approval, with everything needed to run it later exactly as asked. */
export interface HeldCall {
  accepted: AcceptedCall;
  requirement: ApprovalRequirement;
  correlationId: string;
  door: Door;
  callbackUrl?: string;
}

/**
 * After `credential` (a call without its credential is refused, not held): a call the authorize
 * stage marked `heldFor` is stored for a person to approve, and nothing is sent. Without a holder
 * (a road built without approvals) such a call is refused rather than sent.
 */
export function hold(deps: { approvals?: ApprovalHolder; acceptedOf: (call: ToolCall) => AcceptedCall }): Stage {
  return stage("hold", async (call, next) => {
    if (call.heldFor === undefined) return next(call);
    if (deps.approvals === undefined)
      return refused(new GatewayError("approval_required", "this call needs a person's approval and approvals are not wired on this road"), "hold");
    const held: HeldCall = { accepted: deps.acceptedOf(call), requirement: call.heldFor, correlationId: call.correlationId, door: call.door };
    if (call.callbackUrl !== undefined) held.callbackUrl = call.callbackUrl;
    try {
      return { kind: "held", approval: await deps.approvals.hold(held) };
    } catch (err) {
      return refused(isGatewayError(err) ? err : new GatewayError("internal_error", "the call could not be held for approval", { cause: err }), "hold");
    }
  });
}

/** An upstream that saw the credential may echo it back, in its answer or its error: scrub both before they leave. */
export function redact(deps: { redactor: Redactor }): Stage {
  return stage("redact", async (call, next) => {
    const outcome = await next(call);
    if (outcome.kind === "answered") {
      if (!resolvedOf(call).needsCredential) return outcome;
      const { reply } = outcome.execution;
      // An answer whose text holds no secret in any form goes out as it came (no walk, no re-serialising).
      if (reply.raw !== undefined && !deps.redactor.mayHoldSecret(reply.raw)) return outcome;
      const redacted: UpstreamReply =
        reply.stream === undefined ? withoutRaw(reply, deps.redactor.redactValue(reply.body)) : { ...reply, stream: deps.redactor.redactLines(reply.stream) };
      return { kind: "answered", execution: { ...outcome.execution, reply: redacted } };
    }
    if (outcome.kind === "queued" || outcome.kind === "held") return outcome;
    const error = scrubbed(outcome.error, deps.redactor);
    return error === outcome.error ? outcome : { ...outcome, error };
  });
}

/**
 * The end of the road: the adapter's call. The adapter is the only place that knows whether a
 * request went out, and says so through the error it raises: the upstream mapping
 * (tools/upstream.ts) raises `upstream_*` once a request was attempted; the SSRF judge raises
 * `ssrf_blocked` (a denial) and parameter checks `invalid_request` before anything is sent.
 */
export const invoke: Next = async (call) => {
  const action = resolvedOf(call);
  try {
    const ctx: Parameters<typeof action.invoke>[1] = {
      credential: call.credential,
      signal: call.signal ?? new AbortController().signal,
      correlationId: call.correlationId,
    };
    if (call.traceparent !== undefined) ctx.traceparent = call.traceparent;
    if (call.streaming === true) ctx.stream = true;
    if (call.checkRedirect !== undefined) ctx.checkRedirect = call.checkRedirect;
    const reply = await action.invoke(call.params, ctx);
    return { kind: "answered", execution: { reply, attempts: 1, cache: "none", upstreamMs: 0 } };
  } catch (err) {
    if (!isGatewayError(err)) {
      // Aborted by the attempt stage's timer, or a fault inside the adapter: either way it may have been sent.
      return {
        kind: "failed",
        error: new GatewayError("internal_error", `${action.tool} failed inside the gateway`, { cause: err }),
        attempts: 1,
        upstreamMs: 0,
      };
    }
    // The SSRF judge, or policy on a redirect hop: a check said no.
    if (err.code === "ssrf_blocked" || err.code === "guard_failed") return denied(err, "invoke");
    if (err.code.startsWith("upstream")) return { kind: "failed", error: err, attempts: 1, upstreamMs: 0 };
    return refused(err, "invoke");
  }
};

/** Usage the audit trail can store as is: whole token counts (an upstream's odd numbers stay in the metrics only). */
function auditableUsage(usage: { input: number; output: number } | undefined): usage is { input: number; output: number } {
  return usage !== undefined && Number.isSafeInteger(usage.input) && Number.isSafeInteger(usage.output) && Number.isSafeInteger(usage.input + usage.output);
}

/** Tokens an OpenAI-style answer reports (`usage.prompt_tokens` / `completion_tokens`); undefined otherwise. */
export function modelUsageOf(body: unknown): { input: number; output: number } | undefined {
  const usage = (body as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } } | null)?.usage;
  const input = usage?.prompt_tokens;
  const output = usage?.completion_tokens;
  if (typeof input !== "number" || typeof output !== "number" || !(input >= 0) || !(output >= 0)) return undefined;
  return { input, output };
}

function principalOf(call: ToolCall): VerifiedToken {
  if (call.principal === undefined) throw new Error("stage placed before authenticate");
  return call.principal;
}

function resolvedOf(call: ToolCall) {
  if (call.resolved === undefined) throw new Error("stage placed before resolve");
  return call.resolved;
}

function scrubbed(error: GatewayError, redactor: Redactor): GatewayError {
  if (!error.code.startsWith("upstream")) return error;
  const message = redactor.redact(error.message);
  const details = error.details === undefined ? undefined : redactor.redactValue(error.details);
  if (message === error.message && details === error.details) return error;
  const options: ConstructorParameters<typeof GatewayError>[2] = { status: error.status };
  if (details !== undefined) options.details = details;
  if (error.retryAfterSeconds !== undefined) options.retryAfterSeconds = error.retryAfterSeconds;
  return new GatewayError(error.code, message, options);
}
