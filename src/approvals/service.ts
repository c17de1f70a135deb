import { createHash, randomUUID } from "node:crypto";
import type { AuditEntry } from "../audit/index.js";
import { GatewayError, isGatewayError } from "../errors/index.js";
import type { CallbackSender } from "../jobs/callbacks.js";
import type { RuleRef } from "../policy/types.js";
import type { AcceptedCall, ApprovalHolder, HeldApproval, HeldCall, ProxyMeta } from "../proxy/index.js";
import { canonicalJson } from "../util/canonical-json.js";
import { maskCredentialFields, open, seal, type Redactor, type SealedEnvelope } from "../vault/index.js";
import type { ApprovalQuery, ApprovalRecord, ApprovalStatus, ApprovalStore } from "./approval-store.js";

/** What people and the agent see of an approval (`GET /api/approvals/:id`). Never the sealed call. */
export interface ApprovalView {
  id: string;
  status: ApprovalStatus;
  agentId: string;
  tool: string;
  action: string;
  /** Secrets and credential-like fields masked. */
  params: unknown;
  argsHash: string;
  reason: string;
  rule: RuleRef;
  approvers: string[];
  correlationId: string;
  requestedAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  /** The executed call's answer: what `POST /api/proxy` would have answered as `data`. */
  result?: unknown;
  /** And its `meta` (cache, attempts, upstreamMs, gatewayMs). */
  resultMeta?: ProxyMeta;
  error?: { code: string; message: string; status: number };
}

/** Metric hooks; labels stay bounded (tool is clamped by the metrics, decision is a closed set). */
export interface ApprovalEvents {
  /** `decision`: what happened to an approval (requested, approved, denied, expired, executed, failed). */
  counted?(tool: string, decision: "requested" | "approved" | "denied" | "expired" | "executed" | "failed"): void;
  /** Seconds from the request to the decision (or expiry). */
  waited?(decision: "approved" | "denied" | "expired", seconds: number): void;
  pending?(count: number): void;
}

export interface ApprovalServiceOptions {
  store: ApprovalStore;
  /** Runs an approved call through the whole road (door `approval`, phase `run`). */
  runApproved: (call: AcceptedCall, correlationId: string) => Promise<{ data: unknown; meta: ProxyMeta }>;
  /** An approved call that recorded no outcome this long after the decision was interrupted (well past the upstream deadline). */
  runLimitMs: number;
  masterKey: Buffer;
  now: () => number;
  audit: { record(entry: AuditEntry): unknown };
  /** Known secret values (the vault's) are scrubbed from the parameters people see. */
  redactor: Redactor;
  /** Signed, SSRF-judged delivery (the job callback sender): notifications and the agent's callback. */
  sender?: CallbackSender;
  /** Notified of every new approval besides the webhooks its policy names (APPROVAL_WEBHOOK_URL). */
  webhook?: { url: string; format: "json" | "slack" };
  /** Base of the console links in notifications (APPROVAL_CONSOLE_URL); API paths when absent. */
  consoleUrl?: string;
  events?: ApprovalEvents;
  onError?: (err: unknown, what: string) => void;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const MAX_DECISION_REASON = 500;

/** SHA-256 (hex) of the canonical call: the approval is bound to exactly this agent, tool, action and parameters. */
export function argsHashOf(call: { agentId: string; tool: string; action: string; params: Record<string, unknown> }): string {
  return createHash("sha256")
    .update(canonicalJson({ agentId: call.agentId, tool: call.tool, action: call.action, params: call.params }))
    .digest("hex");
}

/**
 * Calls held for a person's approval. The road's hold stage stores them here (sealed, hashed);
 * approving one runs exactly the stored call through the whole road again, once, whichever
 * instance the decision lands on (the pending → approved step is one conditional UPDATE).
 */
export class ApprovalService implements ApprovalHolder {
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly o: ApprovalServiceOptions) {}

  async hold(held: HeldCall): Promise<HeldApproval> {
    const id = `apr_${randomUUID().replaceAll("-", "")}`;
    const now = this.o.now();
    const { accepted, requirement } = held;
    const argsHash = argsHashOf(accepted);
    const record = {
      id,
      agentId: accepted.agentId,
      tool: accepted.tool,
      action: accepted.action,
      paramsView: JSON.stringify(this.o.redactor.redactValue(maskCredentialFields(accepted.params))),
      argsHash,
      sealedCall: JSON.stringify(seal(this.o.masterKey, JSON.stringify(accepted), `approval:${id}`)),
      correlationId: held.correlationId,
      door: held.door,
      callbackUrl: held.callbackUrl ?? null,
      // A guard's explanation may quote a parameter: scrub known secrets from it like from the parameters.
      reason: this.o.redactor.redact(requirement.reason).slice(0, 2000),
      rule: JSON.stringify(requirement.rule),
      approvers: JSON.stringify(requirement.approvers),
      requestedAt: now,
      expiresAt: now + requirement.ttlSeconds * 1000,
    };
    await this.o.store.insert(record);
    this.o.events?.counted?.(record.tool, "requested");
    void this.refreshPending();
    const view = this.view({
      ...record,
      status: "pending",
      decidedAt: null,
      decidedBy: null,
      decisionReason: null,
      result: null,
      error: null,
      finishedAt: null,
    });
    for (const hook of [...requirement.webhooks, ...(this.o.webhook ? [this.o.webhook] : [])]) this.notify(hook, view);
    return { id, status: "pending", expiresAt: view.expiresAt, argsHash };
  }

  /** @throws GatewayError approval_not_found (also when `agentId` is given and it is someone else's) */
  async get(id: string, agentId?: string): Promise<ApprovalView> {
    const found = await this.o.store.get(id);
    if (found === undefined || (agentId !== undefined && found.agentId !== agentId)) throw notFound(id);
    return this.view(found);
  }

  /** Newest first; `nextCursor` continues after the last one. */
  async list(q: Omit<ApprovalQuery, "before"> & { cursor?: string }): Promise<{ approvals: ApprovalView[]; nextCursor: string | null }> {
    const query: ApprovalQuery = { limit: q.limit };
    if (q.status !== undefined) query.status = q.status;
    if (q.agentId !== undefined) query.agentId = q.agentId;
    if (q.tool !== undefined) query.tool = q.tool;
    if (q.cursor !== undefined) query.before = parseCursor(q.cursor);
    const rows = await this.o.store.list(query);
    const last = rows.at(-1);
    return {
      approvals: rows.map((r) => this.view(r)),
      nextCursor: rows.length === q.limit && last !== undefined ? Buffer.from(`${last.requestedAt}:${last.id}`).toString("base64url") : null,
    };
  }

  /**
   * A person's decision. Approving runs exactly the stored call (checked against its hash) through
   * the whole road now (token by id, agent status, policy, quota) and stores its answer or error.
   * @throws GatewayError approval_not_found | approval_expired | approval_already_decided
   */
  async decide(id: string, decision: "approve" | "deny", by: string, reason: string | undefined): Promise<ApprovalView> {
    const at = this.o.now();
    const why = reason === undefined || reason.trim() === "" ? null : reason.trim().slice(0, MAX_DECISION_REASON);
    const decided = await this.o.store.decide(id, { status: decision === "approve" ? "approved" : "denied", by, reason: why, at });
    if (decided === undefined) throw await this.whyUndecidable(id, at);
    this.o.events?.counted?.(decided.tool, decided.status as "approved" | "denied");
    this.o.events?.waited?.(decided.status as "approved" | "denied", (at - decided.requestedAt) / 1000);
    void this.refreshPending();
    // The operator who decided is a field of the record (chained like the rest), besides being named in its reason.
    await this.o.audit.record({
      ...this.auditEntry(
        decided,
        decision === "approve" ? "approval_granted" : "approval_denied",
        `${decision === "approve" ? "approved" : "denied"} by ${by}${why === null ? "" : `: ${why}`}`,
        at,
      ),
      operator: by,
    });
    if (decided.status === "denied") return this.finished(decided);
    return this.finished(await this.execute(decided));
  }

  /**
   * Marks approvals whose time ran out as expired, and approved calls whose instance stopped before
   * recording the outcome as failed (each counted by exactly one instance). Returns how many changed.
   */
  async sweep(): Promise<number> {
    const now = this.o.now();
    const expired = await this.o.store.expire(now);
    for (const a of expired) {
      this.o.events?.counted?.(a.tool, "expired");
      this.o.events?.waited?.("expired", (a.expiresAt - a.requestedAt) / 1000);
      await this.o.audit.record(this.auditEntry(a, "approval_expired", "nobody decided before it expired", now));
      await this.finished(a);
    }
    const interrupted = await this.o.store.failInterrupted(
      now - this.o.runLimitMs,
      JSON.stringify({
        code: "internal_error",
        message: "the gateway instance running this approved call stopped before recording its outcome: it may or may not have been sent, and is not run again",
        status: 500,
      }),
      now,
    );
    for (const a of interrupted) {
      this.o.events?.counted?.(a.tool, "failed");
      await this.finished(a);
    }
    await this.refreshPending();
    return expired.length + interrupted.length;
  }

  start(intervalMs: number): void {
    this.sweeper ??= setInterval(() => void this.sweep().catch((err: unknown) => this.o.onError?.(err, "approval sweep")), intervalMs);
    this.sweeper.unref();
    void this.refreshPending();
  }

  stop(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private async execute(approved: ApprovalRecord): Promise<ApprovalRecord> {
    let outcome: { status: "executed" | "failed"; result?: string; error?: string };
    try {
      const call = this.openCall(approved);
      // The whole road again: a suspended agent, a revoked token or a policy that no longer allows
      // the call refuses it here, before anything is sent.
      const out = await this.o.runApproved(call, approved.correlationId);
      outcome = { status: "executed", result: JSON.stringify(out) };
    } catch (err) {
      const e = isGatewayError(err) ? err : new GatewayError("internal_error", "the approved call failed inside the gateway");
      if (!isGatewayError(err)) this.o.onError?.(err, "approved call");
      outcome = { status: "failed", error: JSON.stringify({ code: e.code, message: e.message, status: e.status }) };
    }
    const at = this.o.now();
    await this.o.store.finish(approved.id, { ...outcome, at });
    this.o.events?.counted?.(approved.tool, outcome.status);
    return { ...approved, status: outcome.status, result: outcome.result ?? null, error: outcome.error ?? null, finishedAt: at };
  }

  /** The stored call, opened and checked against the hash people approved. @throws GatewayError internal_error when it does not match */
  private openCall(a: ApprovalRecord): AcceptedCall {
    let call: AcceptedCall;
    try {
      call = JSON.parse(open(this.o.masterKey, JSON.parse(a.sealedCall) as SealedEnvelope, `approval:${a.id}`).toString("utf8")) as AcceptedCall;
    } catch (err) {
      throw new GatewayError("internal_error", "the stored call cannot be opened: it was not sealed for this approval", { cause: err });
    }
    if (argsHashOf(call) !== a.argsHash || call.agentId !== a.agentId || call.tool !== a.tool || call.action !== a.action) {
      throw new GatewayError("internal_error", "the stored call does not match the approved arguments hash: nothing was sent");
    }
    return call;
  }

  /** Tells the agent's callback URL (if it gave one) how it ended. */
  private async finished(a: ApprovalRecord): Promise<ApprovalView> {
    const view = this.view(a);
    if (a.callbackUrl !== null && this.o.sender !== undefined) void this.o.sender.send(a.callbackUrl, a.id, { approval: view }, "x-gateway-approval-id");
    return view;
  }

  private async whyUndecidable(id: string, at: number): Promise<GatewayError> {
    const found = await this.o.store.get(id);
    if (found === undefined) return notFound(id);
    if (found.status === "expired" || (found.status === "pending" && found.expiresAt <= at)) {
      if (found.status === "pending") await this.sweep().catch((err: unknown) => this.o.onError?.(err, "approval sweep"));
      return new GatewayError("approval_expired", `approval ${id} expired at ${iso(found.expiresAt)}; the agent must ask again`, {
        details: { status: "expired", expiresAt: iso(found.expiresAt) },
      });
    }
    return new GatewayError(
      "approval_already_decided",
      `approval ${id} was already decided (${found.status}${found.decidedBy ? ` by ${found.decidedBy}` : ""})`,
      { details: { status: found.status } },
    );
  }

  private notify(hook: { url: string; format: "json" | "slack" }, view: ApprovalView): void {
    if (this.o.sender === undefined) return;
    const links = this.links(view.id);
    const params = JSON.stringify(view.params);
    const text = [
      `Approval needed: agent ${view.agentId} wants to call ${view.tool}:${view.action}`,
      `Why: ${view.reason}`,
      `Parameters: ${params.length > 1500 ? `${params.slice(0, 1500)}…` : params}`,
      ...(view.approvers.length > 0 ? [`Approvers: ${view.approvers.join(", ")}`] : []),
      `Expires: ${view.expiresAt}`,
      `Approve: ${links.approve}`,
      `Deny: ${links.deny}`,
    ].join("\n");
    const body = hook.format === "slack" ? { text } : { type: "approval.requested", summary: text, approval: view, links };
    void this.o.sender.send(hook.url, view.id, body, "x-gateway-approval-id");
  }

  private links(id: string): { show: string; approve: string; deny: string } {
    if (this.o.consoleUrl !== undefined) {
      const base = `${this.o.consoleUrl.replace(/\/$/, "")}/approvals/${id}`;
      return { show: base, approve: `${base}?decide=approve`, deny: `${base}?decide=deny` };
    }
    return { show: `/api/approvals/${id}`, approve: `POST /api/approvals/${id}/approve`, deny: `POST /api/approvals/${id}/deny` };
  }

  private auditEntry(a: ApprovalRecord, decision: AuditEntry["decision"], reason: string, at: number): AuditEntry {
    return {
      at,
      correlationId: a.correlationId,
      agentId: a.agentId,
      tool: a.tool,
      action: a.action,
      decision,
      reason: `approval ${a.id} ${reason}`.slice(0, 1000),
      status: 200,
      latencyMs: 0,
      upstreamMs: null,
      cache: null,
      attempts: null,
      paramsHash: null,
      door: "approval",
    };
  }

  private async refreshPending(): Promise<void> {
    if (this.o.events?.pending === undefined) return;
    try {
      this.o.events.pending(await this.o.store.countPending());
    } catch (err) {
      this.o.onError?.(err, "approvals pending count");
    }
  }

  private view(a: ApprovalRecord): ApprovalView {
    const out: ApprovalView = {
      id: a.id,
      status: a.status,
      agentId: a.agentId,
      tool: a.tool,
      action: a.action,
      params: JSON.parse(a.paramsView) as unknown,
      argsHash: a.argsHash,
      reason: a.reason,
      rule: JSON.parse(a.rule) as RuleRef,
      approvers: JSON.parse(a.approvers) as string[],
      correlationId: a.correlationId,
      requestedAt: iso(a.requestedAt)!,
      expiresAt: iso(a.expiresAt)!,
      decidedAt: iso(a.decidedAt),
      decidedBy: a.decidedBy,
      decisionReason: a.decisionReason,
    };
    if (a.result !== null) {
      const { data, meta } = JSON.parse(a.result) as { data: unknown; meta: ProxyMeta };
      out.result = data;
      out.resultMeta = meta;
    }
    if (a.error !== null) out.error = JSON.parse(a.error) as ApprovalView["error"] & object;
    return out;
  }
}

function notFound(id: string): GatewayError {
  return new GatewayError("approval_not_found", `no approval with id "${id.slice(0, 80)}"`);
}

/** @throws GatewayError invalid_request */
function parseCursor(cursor: string): { requestedAt: number; id: string } {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const match = /^(\d{1,16}):(apr_[0-9a-f]{32})$/.exec(text);
  if (match === null) throw new GatewayError("invalid_request", "cursor is not one this gateway returned", { details: { field: "cursor" } });
  return { requestedAt: Number(match[1]), id: match[2]! };
}
