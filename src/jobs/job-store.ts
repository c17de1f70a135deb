import type { SqlDriver } from "../store/sql-driver.js";

export type JobStatus = "queued" | "running" | "succeeded" | "failed";

export interface JobRecord {
  id: string;
  status: JobStatus;
  agentId: string;
  tool: string;
  action: string;
  /** The admitted call, sealed with the gateway's master key (parameters may be private). */
  sealedCall: string;
  correlationId: string;
  callbackUrl: string | null;
  attempts: number;
  result: string | null;
  error: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
}

interface JobRow {
  id: string;
  status: JobStatus;
  agent_id: string;
  tool: string;
  action: string;
  sealed_call: string;
  correlation_id: string;
  callback_url: string | null;
  attempts: number | string;
  result: string | null;
  error: string | null;
  created_at: number | string;
  started_at: number | string | null;
  finished_at: number | string | null;
  lease_owner: string | null;
  lease_until: number | string | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function fromRow(r: JobRow): JobRecord {
  return {
    id: r.id,
    status: r.status,
    agentId: r.agent_id,
    tool: r.tool,
    action: r.action,
    sealedCall: r.sealed_call,
    correlationId: r.correlation_id,
    callbackUrl: r.callback_url,
    attempts: Number(r.attempts),
    result: r.result,
    error: r.error,
    createdAt: Number(r.created_at),
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
    leaseOwner: r.lease_owner,
    leaseUntil: num(r.lease_until),
  };
}

/**
 * Durable job queue on the gateway's SQL store. A worker claims a job with a lease; a job whose
 * lease ran out (its worker died, even by SIGKILL) is claimable again by any instance. On
 * PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`, so workers on many instances never collide.
 */
export class JobStore {
  constructor(private readonly driver: SqlDriver) {}

  async insert(job: Pick<JobRecord, "id" | "agentId" | "tool" | "action" | "sealedCall" | "correlationId" | "callbackUrl" | "createdAt">): Promise<void> {
    await this.driver.run(
      `INSERT INTO jobs (id, status, agent_id, tool, action, sealed_call, correlation_id, callback_url, attempts, created_at)
       VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, 0, $8)`,
      [job.id, job.agentId, job.tool, job.action, job.sealedCall, job.correlationId, job.callbackUrl, job.createdAt],
    );
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const rows = await this.driver.all<JobRow>(`SELECT * FROM jobs WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  /** Takes the oldest runnable job (queued, or running with an expired lease) for `owner`. */
  async claim(owner: string, now: number, leaseMs: number): Promise<JobRecord | undefined> {
    const lock = this.driver.dialect === "postgres" ? "FOR UPDATE SKIP LOCKED" : "";
    const rows = await this.driver.all<JobRow>(
      `UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, started_at = COALESCE(started_at, $3)
       WHERE id = (
         SELECT id FROM jobs
         WHERE status = 'queued' OR (status = 'running' AND lease_until < $3)
         ORDER BY created_at LIMIT 1 ${lock}
       )
       RETURNING *`,
      [owner, now + leaseMs, now],
    );
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  /** Extends a lease while a job runs; false when the lease was lost (another worker took it). */
  async renew(id: string, owner: string, leaseUntil: number): Promise<boolean> {
    const r = await this.driver.run(`UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running'`, [id, owner, leaseUntil]);
    return r.changes > 0;
  }

  /** Records the outcome; ignored unless `owner` still holds the lease. */
  async finish(id: string, owner: string, outcome: { status: "succeeded" | "failed"; result?: string; error?: string; at: number }): Promise<boolean> {
    const r = await this.driver.run(
      `UPDATE jobs SET status = $3, result = $4, error = $5, finished_at = $6, lease_owner = NULL, lease_until = NULL
       WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
      [id, owner, outcome.status, outcome.result ?? null, outcome.error ?? null, outcome.at],
    );
    return r.changes > 0;
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const rows = await this.driver.all<{ status: JobStatus; n: number | string }>(`SELECT status, COUNT(*) AS n FROM jobs GROUP BY status`);
    const out: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  /** Deletes finished jobs older than `before`, so the table stays bounded. */
  async prune(before: number): Promise<number> {
    return (await this.driver.run(`DELETE FROM jobs WHERE status IN ('succeeded', 'failed') AND finished_at < $1`, [before])).changes;
  }
}
