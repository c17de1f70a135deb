import type { SqlDriver, SqlValue } from "../store/sql-driver.js";

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "executed" | "failed";
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ["pending", "approved", "denied", "expired", "executed", "failed"];

/** One call held for a person's approval, as stored. */
export interface ApprovalRecord {
  id: string;
  status: ApprovalStatus;
  agentId: string;
  tool: string;
  action: string;
  /** The parameters as people see them (JSON): secrets and credential-like fields masked. */
  paramsView: string;
  /** SHA-256 (hex) of the canonical call: agent, tool, action and parameters. */
  argsHash: string;
  /** The call exactly as asked, sealed with the master key (bound to this approval's id). */
  sealedCall: string;
  correlationId: string;
  door: string;
  callbackUrl: string | null;
  /** Why policy held it (for people). */
  reason: string;
  /** The rule that asked (JSON RuleRef). */
  rule: string;
  /** Who should decide (JSON array of labels). */
  approvers: string;
  requestedAt: number;
  expiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  decisionReason: string | null;
  /** The executed call's answer (JSON), or its error (JSON `{code, message, status}`). */
  result: string | null;
  error: string | null;
  finishedAt: number | null;
}

export interface ApprovalQuery {
  status?: ApprovalStatus;
  agentId?: string;
  tool?: string;
  /** Strictly older than this (requested time and id of the last one seen). */
  before?: { requestedAt: number; id: string };
  limit: number;
}

interface ApprovalRow {
  id: string;
  status: ApprovalStatus;
  agent_id: string;
  tool: string;
  action: string;
  params_view: string;
  args_hash: string;
  sealed_call: string;
  correlation_id: string;
  door: string;
  callback_url: string | null;
  reason: string;
  rule: string;
  approvers: string;
  requested_at: number | string;
  expires_at: number | string;
  decided_at: number | string | null;
  decided_by: string | null;
  decision_reason: string | null;
  result: string | null;
  error: string | null;
  finished_at: number | string | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: ApprovalRow): ApprovalRecord {
  return {
    id: r.id,
    status: r.status,
    agentId: r.agent_id,
    tool: r.tool,
    action: r.action,
    paramsView: r.params_view,
    argsHash: r.args_hash,
    sealedCall: r.sealed_call,
    correlationId: r.correlation_id,
    door: r.door,
    callbackUrl: r.callback_url,
    reason: r.reason,
    rule: r.rule,
    approvers: r.approvers,
    requestedAt: Number(r.requested_at),
    expiresAt: Number(r.expires_at),
    decidedAt: num(r.decided_at),
    decidedBy: r.decided_by,
    decisionReason: r.decision_reason,
    result: r.result,
    error: r.error,
    finishedAt: num(r.finished_at),
  };
}

export type NewApproval = Omit<ApprovalRecord, "status" | "decidedAt" | "decidedBy" | "decisionReason" | "result" | "error" | "finishedAt">;

/**
 * Approvals on the gateway's SQL store (SQLite or PostgreSQL). Every change of status is one
 * conditional UPDATE, so when several instances (or two people) decide at once exactly one wins.
 */
export class ApprovalStore {
  constructor(private readonly driver: SqlDriver) {}

  async insert(a: NewApproval): Promise<void> {
    await this.driver.run(
      `INSERT INTO approvals (id, status, agent_id, tool, action, params_view, args_hash, sealed_call, correlation_id, door, callback_url, reason, rule, approvers, requested_at, expires_at)
       VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
        a.id,
        a.agentId,
        a.tool,
        a.action,
        a.paramsView,
        a.argsHash,
        a.sealedCall,
        a.correlationId,
        a.door,
        a.callbackUrl,
        a.reason,
        a.rule,
        a.approvers,
        a.requestedAt,
        a.expiresAt,
      ],
    );
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const rows = await this.driver.all<ApprovalRow>(`SELECT * FROM approvals WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  /** Newest first. */
  async list(q: ApprovalQuery): Promise<ApprovalRecord[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (column: string, value: SqlValue) => {
      params.push(value);
      where.push(`${column} = $${params.length}`);
    };
    if (q.status !== undefined) add("status", q.status);
    if (q.agentId !== undefined) add("agent_id", q.agentId);
    if (q.tool !== undefined) add("tool", q.tool);
    if (q.before !== undefined) {
      params.push(q.before.requestedAt, q.before.id);
      where.push(`(requested_at < $${params.length - 1} OR (requested_at = $${params.length - 1} AND id < $${params.length}))`);
    }
    params.push(q.limit);
    const rows = await this.driver.all<ApprovalRow>(
      `SELECT * FROM approvals ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY requested_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(fromRow);
  }

  /**
   * pending → approved | denied, only while it has not expired at `at`. Returns the decided record,
   * or undefined when someone else decided first, it expired, or it does not exist.
   */
  async decide(id: string, d: { status: "approved" | "denied"; by: string; reason: string | null; at: number }): Promise<ApprovalRecord | undefined> {
    const rows = await this.driver.all<ApprovalRow>(
      `UPDATE approvals SET status = $2, decided_by = $3, decision_reason = $4, decided_at = $5
       WHERE id = $1 AND status = 'pending' AND expires_at > $5
       RETURNING *`,
      [id, d.status, d.by, d.reason, d.at],
    );
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  /** approved → executed | failed with the call's answer or error; false when it was not `approved`. */
  async finish(id: string, o: { status: "executed" | "failed"; result?: string; error?: string; at: number }): Promise<boolean> {
    const r = await this.driver.run(`UPDATE approvals SET status = $2, result = $3, error = $4, finished_at = $5 WHERE id = $1 AND status = 'approved'`, [
      id,
      o.status,
      o.result ?? null,
      o.error ?? null,
      o.at,
    ]);
    return r.changes > 0;
  }

  /** Marks pending approvals whose time ran out at `now` as expired; returns them (each to exactly one caller). */
  async expire(now: number): Promise<ApprovalRecord[]> {
    const rows = await this.driver.all<ApprovalRow>(
      `UPDATE approvals SET status = 'expired', decided_at = expires_at, finished_at = $1
       WHERE status = 'pending' AND expires_at <= $1
       RETURNING *`,
      [now],
    );
    return rows.map(fromRow);
  }

  /**
   * Approved calls whose run never recorded an outcome by `decidedBefore` (the instance running them
   * stopped): marked failed with `error`, never re-run (the upstream may have acted). Returns them.
   */
  async failInterrupted(decidedBefore: number, error: string, at: number): Promise<ApprovalRecord[]> {
    const rows = await this.driver.all<ApprovalRow>(
      `UPDATE approvals SET status = 'failed', error = $2, finished_at = $3
       WHERE status = 'approved' AND decided_at < $1
       RETURNING *`,
      [decidedBefore, error, at],
    );
    return rows.map(fromRow);
  }

  /** How many approvals wait for a decision (across every instance sharing the store). */
  async countPending(): Promise<number> {
    const rows = await this.driver.all<{ n: number | string }>(`SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending'`);
    return Number(rows[0]?.n ?? 0);
  }
}
