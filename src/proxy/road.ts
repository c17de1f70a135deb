import type { Readable } from "node:stream";
import type { Tracer } from "@opentelemetry/api";
import { GatewayError, isGatewayError } from "../errors/index.js";
import { traceStages } from "../obs/tracing.js";
import type { IdentityService, VerifiedToken } from "../identity/index.js";
import type { Resilience } from "../resilience/executor.js";
import type { CredentialVault, Redactor } from "../vault/index.js";
import type { ToolCatalog, UpstreamReply } from "./catalog.js";
import {
  compose,
  refused,
  type AcceptedCall,
  type CacheStatus,
  type CallOutcome,
  type Door,
  type HeldApproval,
  type Next,
  type Stage,
  type ToolCall,
} from "./call.js";
import {
  authenticate,
  authorize,
  credential,
  hold,
  invoke,
  observe,
  redact,
  resolve,
  type ApprovalHolder,
  type AuditSink,
  type Authorizer,
  type RoadEvents,
} from "./stages.js";

export type { AcceptedCall } from "./call.js";

/** One tool call as a door hands it to the road. */
export interface ProxyInput {
  /** Which door the call came in by; `rest` when absent. */
  door?: Door;
  tool: string;
  action: string;
  params: Record<string, unknown>;
  rawToken: string | undefined;
  /**
   * What `IdentityService.verifyAccessToken(rawToken)` returned when the door verified the token for
   * this very request (the MCP door must, for its 401 challenge): the authenticate stage takes it
   * instead of verifying (and counting) the same token a second time.
   */
  principal?: VerifiedToken;
  correlationId: string;
  idempotencyKey?: string;
  /** `bypass` skips the response cache for this call. */
  cacheMode?: "default" | "bypass";
  traceparent?: string;
  /** Answer as it arrives (only adapters that can stream do; the answer then has `stream`). */
  stream?: boolean;
  /** Where the result of a call held for approval is sent once it ran (signed); the door judges it first. */
  callbackUrl?: string;
}

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
  /** `data` as JSON bytes, when the upstream's can be sent as they are (see UpstreamReply.raw). */
  raw?: Buffer;
  meta: ProxyMeta;
  token: VerifiedToken;
  /** The answer still arriving, when the call asked to stream: the door must pipe it (or destroy it). */
  stream?: Readable;
}

/** A live call policy held for a person's approval: nothing was sent; the door answers 202. */
export interface HeldOutput {
  held: HeldApproval;
  token: VerifiedToken;
}

export interface RoadDeps {
  /** OpenTelemetry: with a tracer every stage runs in its own span (src/obs/tracing.ts); without, nothing is wrapped. */
  tracer?: Tracer;
  catalog: ToolCatalog;
  identity: IdentityService;
  vault: CredentialVault;
  audit: AuditSink;
  redactor: Redactor;
  authorizer: Authorizer;
  resilience: Pick<Resilience, "stages">;
  /** Keeps calls held for approval; without it such calls are refused (`approval_required`). */
  approvals?: ApprovalHolder;
  now: () => number;
  events?: RoadEvents;
  onRefundError?: (err: unknown) => void;
}

export interface ProxyRoad {
  /** The stage names in order, `invoke` last (for docs, health and the test that pins the order). */
  readonly stageNames: readonly string[];
  /**
   * A live call (REST, MCP, the OpenAI-compatible endpoint): the whole road. The answer, or the
   * approval it is held for. @throws GatewayError with the refusal
   */
  readonly handle: (input: ProxyInput) => Promise<ProxyOutput | HeldOutput>;
  /**
   * A deferred door accepts work: the road's checks up to `credential`, then `enqueue` keeps it.
   * Rate limits are counted now, quotas when it runs. @throws GatewayError with the refusal
   */
  accept(input: ProxyInput, enqueue: (call: AcceptedCall) => Promise<string>): Promise<{ jobId: string; token: VerifiedToken }>;
  /** Runs accepted work: the whole road again, the token re-checked by id. @throws GatewayError with the refusal */
  runAccepted(call: AcceptedCall, correlationId: string, door: Door): Promise<{ data: unknown; meta: ProxyMeta }>;
}

/**
 * The road as one list. Every door runs this list (deferred doors run its prefix up to
 * `credential` when they accept work, and all of it when the work runs); no door has a check of
 * its own. The order, and why:
 *  observe       outermost, so every refusal is timed, audited and counted
 *  authenticate  first: nothing about tools, parameters or policy is looked at for an unknown caller
 *  resolve       the tool action and its parameters (bounded, then schema-validated)
 *  authorize     policy, guards, schedules, rate limits and quotas; refunds what the outcome says was not used
 *  credential    the tool's secret from the vault
 *  hold          a call policy allows only with a person's approval is stored (sealed), not sent
 *  idempotency   a repeated key replays the first result (across instances with a shared store)
 *  redact        scrubs the secret from whatever comes back, before it is stored (idempotency
 *                results live in Redis or the database) or cached
 *  cache         response cache, single-flight, stale-if-error
 *  retry         retries of idempotent actions within one deadline, outside the breaker
 *  breaker       asked by every attempt, told every attempt's outcome; an open circuit refuses without trying
 *  attempt       chaos faults and the per-attempt timeout
 *  → invoke      the adapter
 */
export function roadStages(deps: RoadDeps): Stage[] {
  const r = deps.resilience.stages;
  return [
    observe({ audit: deps.audit, now: deps.now, ...(deps.events ? { events: deps.events } : {}) }),
    authenticate({ identity: deps.identity }),
    resolve({ catalog: deps.catalog }),
    authorize({ authorizer: deps.authorizer, ...(deps.onRefundError ? { onRefundError: deps.onRefundError } : {}) }),
    credential({ vault: deps.vault }),
    hold({ ...(deps.approvals ? { approvals: deps.approvals } : {}), acceptedOf }),
    r.idempotency,
    redact({ redactor: deps.redactor }),
    r.cache,
    r.retry,
    r.breaker,
    r.attempt,
  ];
}

/** The stages a deferred door runs when it accepts work: every check, up to and including `credential`. */
export const ACCEPTANCE_ENDS_AFTER = "credential";

export function createProxyRoad(deps: RoadDeps): ProxyRoad {
  const stages = deps.tracer === undefined ? roadStages(deps) : traceStages(roadStages(deps), deps.tracer);
  const whole = compose(stages, invoke);
  const acceptance = stages.slice(0, stages.findIndex((s) => s.name === ACCEPTANCE_ENDS_AFTER) + 1);

  const callOf = (input: ProxyInput, phase: ToolCall["phase"]): ToolCall => ({
    door: input.door ?? "rest",
    phase,
    tool: input.tool,
    action: input.action,
    params: input.params,
    correlationId: input.correlationId,
    proof: input.principal === undefined ? { kind: "bearer", rawToken: input.rawToken } : { kind: "verified", principal: input.principal },
    cacheMode: input.cacheMode ?? "default",
    ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
    ...(input.traceparent === undefined ? {} : { traceparent: input.traceparent }),
    ...(input.stream === true ? { streaming: true } : {}),
    ...(input.callbackUrl === undefined ? {} : { callbackUrl: input.callbackUrl }),
  });

  /** The answer as a door sends it: `data` (read lazily when the reply is kept as text), `raw`, `stream`. */
  type Answered = Omit<ProxyOutput, "token">;
  async function answer(
    call: ToolCall,
    run: Next,
  ): Promise<{ held: HeldApproval; principal: VerifiedToken | undefined } | { answered: Answered; principal: VerifiedToken | undefined }> {
    const startedMs = performance.now();
    const outcome = await run(call);
    if (outcome.kind === "held") return { held: outcome.approval, principal: outcome.principal };
    if (outcome.kind !== "answered") throw errorFrom(outcome);
    const { execution } = outcome;
    const meta: ProxyMeta = {
      correlationId: call.correlationId,
      tool: call.tool,
      action: call.action,
      cache: execution.cache,
      attempts: execution.attempts,
      upstreamMs: round(execution.upstreamMs),
      gatewayMs: round(Math.max(0, performance.now() - startedMs - execution.upstreamMs)),
      ...(execution.replayed ? { replayed: true } : {}),
    };
    const { reply } = execution;
    // `data` is read only by doors that need the value: an answer kept as text is not parsed for the others.
    const answered: Answered =
      reply.stream !== undefined
        ? { data: reply.body, meta, stream: reply.stream }
        : reply.raw === undefined
          ? { data: reply.body, meta }
          : lazyData(reply, { raw: reply.raw, meta });
    return { answered, principal: outcome.principal };
  }

  return {
    stageNames: [...stages.map((s) => s.name), "invoke"],

    async handle(input) {
      const out = await answer(callOf(input, "now"), whole);
      if ("held" in out) return { held: out.held, token: out.principal! };
      return Object.assign(out.answered, { token: out.principal! });
    },

    async accept(input, enqueue) {
      const keep: Next = async (call) => {
        const principal = call.principal!;
        try {
          return { kind: "queued", jobId: await enqueue(acceptedOf(call)), principal };
        } catch (err) {
          return refused(isGatewayError(err) ? err : new GatewayError("internal_error", "the work could not be queued", { cause: err }), "enqueue");
        }
      };
      const outcome = await compose(acceptance, keep)(callOf({ ...input, door: input.door ?? "job" }, "accept"));
      if (outcome.kind !== "queued") throw errorFrom(outcome);
      return { jobId: outcome.jobId, token: outcome.principal! };
    },

    async runAccepted(accepted, correlationId, door) {
      const call: ToolCall = {
        door,
        phase: "run",
        tool: accepted.tool,
        action: accepted.action,
        params: accepted.params,
        correlationId,
        // Work accepted before tokens were kept: the scope that covered exactly this call is what was proven.
        proof: {
          kind: "accepted",
          tokenId: accepted.tokenId,
          agentId: accepted.agentId,
          scopes: accepted.scopes ?? [`${accepted.tool}:${accepted.action}`],
          intent: accepted.intent,
        },
        cacheMode: "default",
        ...(accepted.idempotencyKey === undefined ? {} : { idempotencyKey: accepted.idempotencyKey }),
      };
      const out = await answer(call, whole);
      // Only a live call is ever held (the authorize stage refuses the others), so this cannot happen.
      if ("held" in out) throw new GatewayError("internal_error", "deferred work was held again");
      return { data: out.answered.data, meta: out.answered.meta };
    },
  };
}

/** The call as deferred work keeps it (jobs, approvals): what was asked and the token it was asked with. */
function acceptedOf(call: ToolCall): AcceptedCall {
  const principal = call.principal!;
  const accepted: AcceptedCall = {
    tool: call.tool,
    action: call.action,
    params: call.params,
    agentId: principal.agentId,
    tokenId: principal.tokenId,
    scopes: principal.scopes,
  };
  if (principal.intent !== undefined) accepted.intent = principal.intent;
  if (call.idempotencyKey !== undefined) accepted.idempotencyKey = call.idempotencyKey;
  return accepted;
}

function errorFrom(outcome: CallOutcome): GatewayError {
  if (outcome.kind === "answered" || outcome.kind === "queued" || outcome.kind === "held") return new GatewayError("internal_error", "unexpected outcome");
  return outcome.error;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** `fields` with a `data` property that reads the reply's body when first used (and keeps it, enumerable, for spreads). */
function lazyData<T extends object>(reply: UpstreamReply, fields: T): T & { data: unknown } {
  Object.defineProperty(fields, "data", { enumerable: true, configurable: true, get: () => reply.body });
  return fields as T & { data: unknown };
}
