import type { SqlDriver } from "./sql-driver.js";

/** One schema change. `sql` is a list of statements valid on both SQLite and PostgreSQL. */
export interface Migration {
  version: number;
  name: string;
  sql: readonly string[];
}

/** Versioned migrations, applied in order at start. Never edit one that has shipped: add a new one. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "identity",
    sql: [
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        status TEXT NOT NULL,
        key_algorithm TEXT NOT NULL,
        public_key_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        payload_hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        intent TEXT,
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT,
        revoked_reason TEXT
      )`,
      `CREATE INDEX tokens_agent ON tokens (agent_id)`,
      `CREATE INDEX tokens_revoked ON tokens (revoked_at)`,
      `CREATE TABLE assertion_jtis (
        agent_id TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (agent_id, jti)
      )`,
      `CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        private_key_sealed TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retired_at BIGINT
      )`,
    ],
  },
  {
    version: 2,
    name: "credentials-and-audit",
    sql: [
      `CREATE TABLE credentials (
        tool TEXT NOT NULL,
        version INTEGER NOT NULL,
        sealed TEXT NOT NULL,
        description TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tool, version)
      )`,
      `CREATE TABLE credential_active (
        tool TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        activated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE audit_log (
        id TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        correlation_id TEXT NOT NULL,
        agent_id TEXT,
        tool TEXT,
        action TEXT,
        decision TEXT NOT NULL,
        reason TEXT,
        status INTEGER NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL,
        upstream_ms DOUBLE PRECISION,
        cache TEXT,
        attempts INTEGER,
        params_hash TEXT
      )`,
      `CREATE INDEX audit_at ON audit_log (at)`,
      `CREATE INDEX audit_agent_at ON audit_log (agent_id, at)`,
    ],
  },
  {
    version: 3,
    name: "policies",
    sql: [
      `CREATE TABLE policies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        current_version INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE policy_versions (
        policy_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        spec TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (policy_id, version)
      )`,
    ],
  },
  {
    version: 4,
    name: "jobs",
    sql: [
      `CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        action TEXT NOT NULL,
        sealed_call TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        callback_url TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        lease_owner TEXT,
        lease_until BIGINT
      )`,
      `CREATE INDEX jobs_claim ON jobs (status, lease_until, created_at)`,
      `CREATE INDEX jobs_agent ON jobs (agent_id, created_at)`,
    ],
  },
  {
    version: 5,
    name: "road doors and shared idempotency keys",
    sql: [
      // Which door a call came in by (rest, job, approval, mcp, openai); NULL for records written before.
      `ALTER TABLE audit_log ADD COLUMN door TEXT`,
      `CREATE TABLE idempotency_keys (
        id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        lease TEXT,
        result TEXT,
        expires_at BIGINT NOT NULL
      )`,
      `CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)`,
    ],
  },
  {
    // Tamper evidence: each audit record is chained to the previous one of the same chain (one
    // chain per gateway process, keyed by its instance id) with an HMAC; audit_chains holds each
    // chain's head, itself MACed, so a cut-off tail shows too. Rows written before this migration
    // have no chain and are reported as unchained by `gateway audit verify`.
    version: 6,
    name: "audit-hash-chain",
    sql: [
      `ALTER TABLE audit_log ADD COLUMN chain_id TEXT`,
      `ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT`,
      `ALTER TABLE audit_log ADD COLUMN prev_hash TEXT`,
      `ALTER TABLE audit_log ADD COLUMN hash TEXT`,
      `CREATE UNIQUE INDEX audit_chain_seq ON audit_log (chain_id, chain_seq)`,
      `CREATE TABLE audit_chains (
        chain_id TEXT PRIMARY KEY,
        started_at BIGINT NOT NULL,
        head_seq BIGINT NOT NULL,
        head_hash TEXT NOT NULL,
        head_mac TEXT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
    ],
  },
  {
    version: 7,
    name: "approvals",
    sql: [
      `CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        action TEXT NOT NULL,
        params_view TEXT NOT NULL,
        args_hash TEXT NOT NULL,
        sealed_call TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        door TEXT NOT NULL,
        callback_url TEXT,
        reason TEXT NOT NULL,
        rule TEXT NOT NULL,
        approvers TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT,
        decided_by TEXT,
        decision_reason TEXT,
        result TEXT,
        error TEXT,
        finished_at BIGINT
      )`,
      `CREATE INDEX approvals_status_expiry ON approvals (status, expires_at)`,
      `CREATE INDEX approvals_requested ON approvals (requested_at, id)`,
      `CREATE INDEX approvals_agent ON approvals (agent_id, requested_at)`,
    ],
  },
  {
    version: 8,
    name: "operators",
    sql: [
      `CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        status TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        key_rotated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE operator_sessions (
        id_hash TEXT PRIMARY KEY,
        operator_id TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
      `CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id)`,
      // Who made an admin change or decided an approval (null for agents' calls).
      `ALTER TABLE audit_log ADD COLUMN operator TEXT`,
      `CREATE INDEX audit_correlation ON audit_log (correlation_id)`,
    ],
  },
  {
    version: 9,
    name: "model token usage in the audit trail",
    sql: [
      // What an LLM answer reported (OpenAI-style usage); NULL for every other record and for those written before.
      `ALTER TABLE audit_log ADD COLUMN prompt_tokens BIGINT`,
      `ALTER TABLE audit_log ADD COLUMN completion_tokens BIGINT`,
      `ALTER TABLE audit_log ADD COLUMN total_tokens BIGINT`,
    ],
  },
];

/** Applies every migration newer than the database's version, each in its own transaction. */
export async function migrate(driver: SqlDriver, now: () => number = Date.now): Promise<number[]> {
  return driver.withMigrationLock(async () => {
    await driver.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    const done = new Set((await driver.all<{ version: number }>(`SELECT version FROM schema_migrations`)).map((r) => r.version));
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await driver.transaction(async (tx) => {
        for (const statement of migration.sql) await tx.run(statement);
        await tx.run(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, [migration.version, migration.name, now()]);
      });
      applied.push(migration.version);
    }
    return applied;
  });
}
