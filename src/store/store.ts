import path from "node:path";
import { migrate } from "./migrations.js";
import { openPostgresDriver, openSqliteDriver, UniqueViolation, type SqlDriver, type SqlValue } from "./sql-driver.js";
import { openSqliteAuditWriter } from "./sqlite-audit-writer.js";
import { AUDIT_HEAD_UPSERT, AUDIT_INSERT_COLUMNS, auditHeadValues, auditRowValues } from "./audit-sql.js";

export type AgentStatus = "active" | "suspended";
export type KeyAlgorithm = "EdDSA" | "ES256" | "RS256";

export interface AgentRecord {
  id: string;
  name: string;
  role: string;
  status: AgentStatus;
  keyAlgorithm: KeyAlgorithm;
  /** The agent's public key as a JSON Web Key. */
  publicKeyJwk: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export interface TokenRecord {
  id: string;
  agentId: string;
  /** sha256 (base64url) of the token's payload segment: its provenance fingerprint. */
  payloadHash: string;
  scopes: string[];
  intent: string | null;
  issuedAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedReason: string | null;
}

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  publicJwk: Record<string, unknown>;
  /** The private key, sealed with the master key (see vault/envelope). */
  privateKeySealed: string;
  createdAt: number;
  retiredAt: number | null;
}

export interface CredentialVersionRecord {
  tool: string;
  version: number;
  /** The secret sealed with the master key (a JSON SealedEnvelope). */
  sealed: string;
  description: string | null;
  createdAt: number;
}

export interface ActiveCredentialRecord {
  tool: string;
  version: number;
  activatedAt: number;
}

/** One audited call. Never holds parameters or secrets: only a hash of the parameters. */
export interface AuditRecord {
  id: string;
  at: number;
  correlationId: string;
  agentId: string | null;
  tool: string | null;
  action: string | null;
  /**
   * `pending_approval`: the call was held for a person; `approval_granted` / `approval_denied` /
   * `approval_expired`: what became of it (same correlation id; the executed call has its own record).
   */
  decision: "allow" | "deny" | "error" | "pending_approval" | "approval_granted" | "approval_denied" | "approval_expired";
  reason: string | null;
  status: number;
  latencyMs: number;
  upstreamMs: number | null;
  cache: string | null;
  attempts: number | null;
  paramsHash: string | null;
  /** The door the call came in by (`rest`, `job`, `approval`, `mcp`, `openai`); absent on older records. */
  door?: string | null;
  /** The operator who made an admin change or decided an approval; absent for agents' calls. */
  operator?: string | null;
  /**
   * Model tokens an LLM answer reported (OpenAI-style `usage`), for calls answered by the upstream;
   * absent (null) for other calls, cached or replayed answers and records written before it existed.
   */
  usage?: AuditUsage | null;
  /** The hash chain the record belongs to (the writing instance's id); null for records written before chaining. */
  chainId: string | null;
  /** Position in its chain, from 1, without gaps. */
  chainSeq: number | null;
  /** `hash` of the previous record of the chain (the chain's genesis value for the first). */
  prevHash: string | null;
  /** HMAC over `prevHash` and every other field: editing a record, or removing one, breaks the chain. */
  hash: string | null;
}

/** Tokens of one model answer: `totalTokens` is prompt + completion. */
export interface AuditUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** The fields of an audit record that place it in its chain. */
export type AuditChainFields = "chainId" | "chainSeq" | "prevHash" | "hash";

/** The last record written to a chain, MACed so a cut-off tail shows. */
export interface AuditChainHead {
  chainId: string;
  startedAt: number;
  headSeq: number;
  headHash: string;
  headMac: string;
  updatedAt: number;
}

/**
 * Writes batches of chained audit records with their chain head, in one transaction that is
 * durable when the promise resolves. The SQLite one writes from a worker thread (its own
 * connection, `synchronous=FULL`), so neither the inserts nor the fsync run on the event loop.
 */
export interface AuditWriter {
  write(records: readonly AuditRecord[], head: AuditChainHead): Promise<void>;
  /** Most records one write should carry (a writer on the event loop keeps each commit short). */
  readonly maxBatch?: number;
  close(): Promise<void>;
}

export interface AuditQuery {
  agentId?: string;
  tool?: string;
  decision?: AuditRecord["decision"];
  correlationId?: string;
  operator?: string;
  /** `call`: agents' tool calls; `admin`: operators' changes. */
  kind?: "call" | "admin";
  /** Only calls that came in by this door. */
  door?: string;
  from?: number;
  to?: number;
  /** Return records strictly older than this cursor (`at` and `id` of the last record seen). */
  before?: { at: number; id: string };
  limit: number;
}

export interface Page {
  limit: number;
  offset: number;
}

export interface AgentPage extends Page {
  /** Case-insensitive part of the name, id or role. */
  search?: string;
}

/** The storage port. Both backends (embedded SQLite and PostgreSQL) pass the same contract suite. */
export interface StoredPolicy {
  id: string;
  name: string;
  version: number;
  spec: string;
  hash: string;
  createdAt: number;
  updatedAt: number;
}

export interface StoredPolicyVersion {
  version: number;
  spec: string;
  hash: string;
  createdAt: number;
}

/*
 * The storage port, cut by feature: each service is handed the slice it uses, and each slice has
 * its own contract suite run against SQLite and PostgreSQL (test/contract/store/). One SQL class
 * implements them all (both dialects accept the same statements).
 */

/** Small named values (generic tool definitions, install markers). */
export interface MetaStore {
  getMeta(key: string): Promise<string | undefined>;
  /** Sets `key` only if absent; returns the value that is stored afterwards (first writer wins). */
  setMetaIfAbsent(key: string, value: string): Promise<string>;
  /** Creates or replaces a value. */
  setMeta(key: string, value: string): Promise<void>;
}

/** Agents and their public keys. */
export interface AgentStore {
  /** @throws UniqueViolation when the id or name is taken. */
  insertAgent(agent: AgentRecord): Promise<void>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  listAgents(page: AgentPage): Promise<AgentRecord[]>;
  setAgentStatus(id: string, status: AgentStatus, at: number): Promise<AgentRecord | undefined>;
  /** Ids of agents changed at or after `since` (for instances reconciling what they may have missed). */
  agentIdsUpdatedSince(since: number, limit: number): Promise<string[]>;
}

/** The registry of issued access tokens, with revocation. */
export interface TokenStore {
  insertToken(token: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  /** Marks one token revoked; returns false when it does not exist. Revoking twice keeps the first time. */
  revokeToken(id: string, at: number, reason: string): Promise<boolean>;
  /** Revokes every live token of an agent; returns the ids revoked. */
  revokeAgentTokens(agentId: string, at: number, reason: string): Promise<string[]>;
  /** Ids of tokens revoked at or after `since` (for instances reconciling what they may have missed). */
  revokedTokenIdsSince(since: number, limit: number): Promise<string[]>;
}

/** Assertion ids already used to get a token (replay protection). */
export interface AssertionStore {
  /** Records an assertion's jti; returns false when it was already used (a replay). */
  useAssertionJti(agentId: string, jti: string, expiresAt: number): Promise<boolean>;
  /** Forgets assertion ids that expired before `now`. */
  pruneExpired(now: number): Promise<void>;
}

/** The gateway's token signing keys (sealed private halves). */
export interface SigningKeyStore {
  insertSigningKey(key: SigningKeyRecord): Promise<void>;
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  retireSigningKey(kid: string, at: number): Promise<void>;
}

/** Policy documents with their versions. */
export interface PolicyStore {
  listPolicies(): Promise<StoredPolicy[]>;
  getPolicyVersions(id: string): Promise<StoredPolicyVersion[]>;
  /** Creates a policy at version 1. @throws UniqueViolation when the name is taken */
  insertPolicy(p: { id: string; name: string; spec: string; hash: string; at: number }): Promise<void>;
  /** Adds a version and makes it current; returns the new version, or undefined when the policy does not exist. */
  addPolicyVersion(p: { id: string; name: string; spec: string; hash: string; at: number }): Promise<number | undefined>;
  deletePolicy(id: string): Promise<boolean>;
}

/** Sealed tool credentials, with versions and the active one per tool. */
export interface CredentialStore {
  /** Adds a new version of a tool's credential (version = previous max + 1) and returns it. */
  insertCredentialVersion(tool: string, sealedFor: (version: number) => string, description: string | null, at: number): Promise<CredentialVersionRecord>;
  listCredentialVersions(tool?: string): Promise<CredentialVersionRecord[]>;
  getCredentialVersion(tool: string, version: number): Promise<CredentialVersionRecord | undefined>;
  setActiveCredential(tool: string, version: number, at: number): Promise<void>;
  listActiveCredentials(): Promise<ActiveCredentialRecord[]>;
}

/** The audit trail. */
export interface AuditStore {
  /** Inserts audit records (and, when given, sets their chain's head) in one transaction. */
  insertAuditRecords(records: readonly AuditRecord[], head?: AuditChainHead): Promise<void>;
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /**
   * The writer the audit log commits through (see AuditWriter). SQLite: `thread` (default) commits
   * from a worker thread with `synchronous=FULL` (an fsync per commit, off the event loop);
   * `inline` commits on the main connection (`synchronous=NORMAL` in WAL: survives a process
   * crash, not a power loss; no thread hop). PostgreSQL ignores it.
   */
  openAuditWriter(options?: { sqlite?: "thread" | "inline"; fsync?: boolean }): AuditWriter;
  listAuditChains(): Promise<AuditChainHead[]>;
  /** Chain ids that have records (a chain whose registry row was removed still shows here). */
  auditChainIds(): Promise<string[]>;
  /** Records of one chain with `chainSeq > afterSeq`, in chain order. */
  auditChainRecords(chainId: string, afterSeq: number, limit: number): Promise<AuditRecord[]>;
  /** Records written before chaining existed (no chain id). */
  countUnchainedAudit(): Promise<number>;
}

/** Every slice, plus what the composition root needs to run the store. The SQL driver is not part of the port. */
export interface Store extends MetaStore, AgentStore, TokenStore, AssertionStore, SigningKeyStore, PolicyStore, CredentialStore, AuditStore {
  readonly kind: "sqlite" | "postgres";
  /** Runs `fn` while holding a lock shared by every instance on this database (one-time setup steps). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  databaseUrl: string | undefined;
  databaseSchema: string;
  databasePoolSize: number;
  dataDir: string;
  sqliteCheckpoint?: "thread" | "inline";
}

/** Opens the configured backend and applies pending migrations. */
/** The multi-row audit insert for `rows` rows: built once per row count (the SQLite driver also prepares it once). */
const auditInsertSqls = new Map<number, string>();
function auditInsertSql(rows: number): string {
  let sql = auditInsertSqls.get(rows);
  if (sql === undefined) {
    const tuples = Array.from({ length: rows }, (_, j) => `(${Array.from({ length: AUDIT_COLUMNS }, (_, k) => `$${j * AUDIT_COLUMNS + k + 1}`).join(", ")})`);
    sql = `INSERT INTO audit_log (${AUDIT_INSERT_COLUMNS}) VALUES ${tuples.join(", ")} ON CONFLICT (id) DO NOTHING`;
    auditInsertSqls.set(rows, sql);
  }
  return sql;
}

export async function openStore(options: StoreOptions): Promise<SqlStore> {
  const sqliteFile = options.databaseUrl === undefined ? path.join(options.dataDir, "gateway.db") : undefined;
  const driver =
    sqliteFile !== undefined
      ? openSqliteDriver(sqliteFile, options.sqliteCheckpoint === undefined ? {} : { checkpoint: options.sqliteCheckpoint })
      : await openPostgresDriver(options.databaseUrl!, options.databaseSchema, options.databasePoolSize);
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close();
    throw err;
  }
  return new SqlStore(driver, sqliteFile === undefined ? {} : { sqliteFile });
}

interface AgentRow {
  id: string;
  name: string;
  role: string;
  status: string;
  key_algorithm: string;
  public_key_jwk: string;
  created_at: number;
  updated_at: number;
}
interface TokenRow {
  id: string;
  agent_id: string;
  payload_hash: string;
  scopes: string;
  intent: string | null;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
}
interface CredentialRow {
  tool: string;
  version: number;
  sealed: string;
  description: string | null;
  created_at: number;
}
interface AuditRow {
  id: string;
  at: number;
  correlation_id: string;
  agent_id: string | null;
  tool: string | null;
  action: string | null;
  decision: string;
  reason: string | null;
  status: number;
  latency_ms: number;
  upstream_ms: number | null;
  cache: string | null;
  attempts: number | null;
  params_hash: string | null;
  door: string | null;
  operator: string | null;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  chain_id: string | null;
  chain_seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}
interface AuditChainRow {
  chain_id: string;
  started_at: number;
  head_seq: number;
  head_hash: string;
  head_mac: string;
  updated_at: number;
}
interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_key_sealed: string;
  created_at: number;
  retired_at: number | null;
}

const toAgent = (r: AgentRow): AgentRecord => ({
  id: r.id,
  name: r.name,
  role: r.role,
  status: r.status as AgentStatus,
  keyAlgorithm: r.key_algorithm as KeyAlgorithm,
  publicKeyJwk: JSON.parse(r.public_key_jwk) as Record<string, unknown>,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id,
  agentId: r.agent_id,
  payloadHash: r.payload_hash,
  scopes: JSON.parse(r.scopes) as string[],
  intent: r.intent,
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  revokedReason: r.revoked_reason,
});
const toSigningKey = (r: SigningKeyRow): SigningKeyRecord => ({
  kid: r.kid,
  alg: r.alg,
  publicJwk: JSON.parse(r.public_jwk) as Record<string, unknown>,
  privateKeySealed: r.private_key_sealed,
  createdAt: r.created_at,
  retiredAt: r.retired_at,
});

const toCredential = (r: CredentialRow): CredentialVersionRecord => ({
  tool: r.tool,
  version: r.version,
  sealed: r.sealed,
  description: r.description,
  createdAt: r.created_at,
});
const toAudit = (r: AuditRow): AuditRecord => ({
  id: r.id,
  at: r.at,
  correlationId: r.correlation_id,
  agentId: r.agent_id,
  tool: r.tool,
  action: r.action,
  decision: r.decision as AuditRecord["decision"],
  reason: r.reason,
  status: r.status,
  latencyMs: r.latency_ms,
  upstreamMs: r.upstream_ms,
  cache: r.cache,
  attempts: r.attempts,
  paramsHash: r.params_hash,
  door: r.door ?? null,
  operator: r.operator ?? null,
  usage:
    r.prompt_tokens === null || r.prompt_tokens === undefined || r.completion_tokens === null || r.completion_tokens === undefined
      ? null
      : { promptTokens: r.prompt_tokens, completionTokens: r.completion_tokens, totalTokens: r.total_tokens ?? r.prompt_tokens + r.completion_tokens },
  chainId: r.chain_id ?? null,
  chainSeq: r.chain_seq ?? null,
  prevHash: r.prev_hash ?? null,
  hash: r.hash ?? null,
});
const toChainHead = (r: AuditChainRow): AuditChainHead => ({
  chainId: r.chain_id,
  startedAt: r.started_at,
  headSeq: r.head_seq,
  headHash: r.head_hash,
  headMac: r.head_mac,
  updatedAt: r.updated_at,
});

const AUDIT_COLUMNS = AUDIT_INSERT_COLUMNS.split(",").length;

/** The one Store implementation: plain SQL that both dialects accept. */
export class SqlStore implements Store {
  readonly kind: "sqlite" | "postgres";
  /** For the composition root: parts that keep tables of their own (jobs, idempotency keys) and the pool gauge. */
  constructor(
    readonly driver: SqlDriver,
    private readonly options: { sqliteFile?: string } = {},
  ) {
    this.kind = driver.dialect;
  }

  private async one<T>(sql: string, params: readonly SqlValue[]): Promise<T | undefined> {
    return (await this.driver.all<T>(sql, params))[0];
  }

  async getMeta(key: string) {
    return (await this.one<{ value: string }>(`SELECT value FROM meta WHERE key = $1`, [key]))?.value;
  }

  async setMetaIfAbsent(key: string, value: string) {
    await this.driver.run(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, value]);
    return (await this.getMeta(key)) ?? value;
  }

  async setMeta(key: string, value: string) {
    await this.driver.run(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value]);
  }

  async insertAgent(a: AgentRecord) {
    await this.driver.run(
      `INSERT INTO agents (id, name, role, status, key_algorithm, public_key_jwk, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [a.id, a.name, a.role, a.status, a.keyAlgorithm, JSON.stringify(a.publicKeyJwk), a.createdAt, a.updatedAt],
    );
  }

  async getAgent(id: string) {
    const row = await this.one<AgentRow>(`SELECT * FROM agents WHERE id = $1`, [id]);
    return row && toAgent(row);
  }

  async listAgents(page: AgentPage) {
    if (page.search === undefined || page.search === "") {
      const rows = await this.driver.all<AgentRow>(`SELECT * FROM agents ORDER BY created_at, id LIMIT $1 OFFSET $2`, [page.limit, page.offset]);
      return rows.map(toAgent);
    }
    // LIKE wildcards in the search text are matched literally.
    const pattern = `%${page.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.driver.all<AgentRow>(
      `SELECT * FROM agents WHERE LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(id) LIKE $1 ESCAPE '\\' OR LOWER(role) LIKE $1 ESCAPE '\\' ORDER BY created_at, id LIMIT $2 OFFSET $3`,
      [pattern, page.limit, page.offset],
    );
    return rows.map(toAgent);
  }

  async setAgentStatus(id: string, status: AgentStatus, at: number) {
    await this.driver.run(`UPDATE agents SET status = $1, updated_at = $2 WHERE id = $3`, [status, at, id]);
    return this.getAgent(id);
  }

  async insertToken(t: TokenRecord) {
    await this.driver.run(
      `INSERT INTO tokens (id, agent_id, payload_hash, scopes, intent, issued_at, expires_at, revoked_at, revoked_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [t.id, t.agentId, t.payloadHash, JSON.stringify(t.scopes), t.intent, t.issuedAt, t.expiresAt, t.revokedAt, t.revokedReason],
    );
  }

  async getToken(id: string) {
    const row = await this.one<TokenRow>(`SELECT * FROM tokens WHERE id = $1`, [id]);
    return row && toToken(row);
  }

  async revokeToken(id: string, at: number, reason: string) {
    await this.driver.run(`UPDATE tokens SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL`, [at, reason, id]);
    return (await this.getToken(id)) !== undefined;
  }

  async listPolicies() {
    const rows = await this.driver.all<{
      id: string;
      name: string;
      current_version: number;
      created_at: number;
      updated_at: number;
      spec: string;
      hash: string;
    }>(
      `SELECT p.id, p.name, p.current_version, p.created_at, p.updated_at, v.spec, v.hash
       FROM policies p JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.current_version
       ORDER BY p.created_at, p.id`,
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      version: r.current_version,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      spec: r.spec,
      hash: r.hash,
    }));
  }

  async getPolicyVersions(id: string) {
    const rows = await this.driver.all<{ version: number; spec: string; hash: string; created_at: number }>(
      `SELECT version, spec, hash, created_at FROM policy_versions WHERE policy_id = $1 ORDER BY version`,
      [id],
    );
    return rows.map((r) => ({ version: r.version, spec: r.spec, hash: r.hash, createdAt: r.created_at }));
  }

  async insertPolicy(p: { id: string; name: string; spec: string; hash: string; at: number }) {
    await this.driver.transaction(async (tx) => {
      await tx.run(`INSERT INTO policies (id, name, current_version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)`, [p.id, p.name, p.at]);
      await tx.run(`INSERT INTO policy_versions (policy_id, version, spec, hash, created_at) VALUES ($1, 1, $2, $3, $4)`, [p.id, p.spec, p.hash, p.at]);
    });
  }

  async addPolicyVersion(p: { id: string; name: string; spec: string; hash: string; at: number }) {
    return this.driver.transaction(async (tx) => {
      const rows = await tx.all<{ current_version: number }>(`SELECT current_version FROM policies WHERE id = $1`, [p.id]);
      if (rows[0] === undefined) return undefined;
      const version = rows[0].current_version + 1;
      await tx.run(`INSERT INTO policy_versions (policy_id, version, spec, hash, created_at) VALUES ($1, $2, $3, $4, $5)`, [
        p.id,
        version,
        p.spec,
        p.hash,
        p.at,
      ]);
      await tx.run(`UPDATE policies SET current_version = $2, name = $3, updated_at = $4 WHERE id = $1`, [p.id, version, p.name, p.at]);
      return version;
    });
  }

  async deletePolicy(id: string) {
    return this.driver.transaction(async (tx) => {
      const r = await tx.run(`DELETE FROM policies WHERE id = $1`, [id]);
      await tx.run(`DELETE FROM policy_versions WHERE policy_id = $1`, [id]);
      return r.changes > 0;
    });
  }

  async revokedTokenIdsSince(since: number, limit: number) {
    const rows = await this.driver.all<{ id: string }>(`SELECT id FROM tokens WHERE revoked_at >= $1 ORDER BY revoked_at LIMIT $2`, [since, limit]);
    return rows.map((r) => r.id);
  }

  async agentIdsUpdatedSince(since: number, limit: number) {
    const rows = await this.driver.all<{ id: string }>(`SELECT id FROM agents WHERE updated_at >= $1 ORDER BY updated_at LIMIT $2`, [since, limit]);
    return rows.map((r) => r.id);
  }

  async revokeAgentTokens(agentId: string, at: number, reason: string) {
    return this.driver.transaction(async (tx) => {
      const rows = await tx.all<{ id: string }>(`SELECT id FROM tokens WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2`, [agentId, at]);
      await tx.run(`UPDATE tokens SET revoked_at = $1, revoked_reason = $2 WHERE agent_id = $3 AND revoked_at IS NULL AND expires_at > $1`, [
        at,
        reason,
        agentId,
      ]);
      return rows.map((r) => r.id);
    });
  }

  async useAssertionJti(agentId: string, jti: string, expiresAt: number) {
    const { changes } = await this.driver.run(
      `INSERT INTO assertion_jtis (agent_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (agent_id, jti) DO NOTHING`,
      [agentId, jti, expiresAt],
    );
    return changes === 1;
  }

  async pruneExpired(now: number) {
    await this.driver.run(`DELETE FROM assertion_jtis WHERE expires_at < $1`, [now]);
  }

  async insertSigningKey(k: SigningKeyRecord) {
    await this.driver.run(`INSERT INTO signing_keys (kid, alg, public_jwk, private_key_sealed, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6)`, [
      k.kid,
      k.alg,
      JSON.stringify(k.publicJwk),
      k.privateKeySealed,
      k.createdAt,
      k.retiredAt,
    ]);
  }

  async listSigningKeys() {
    return (await this.driver.all<SigningKeyRow>(`SELECT * FROM signing_keys ORDER BY created_at, kid`)).map(toSigningKey);
  }

  async retireSigningKey(kid: string, at: number) {
    await this.driver.run(`UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL`, [at, kid]);
  }

  async insertCredentialVersion(tool: string, sealedFor: (version: number) => string, description: string | null, at: number) {
    // Two admins adding a version at once: the loser's insert hits the primary key; retry with the next number.
    for (let attempt = 0; ; attempt++) {
      const row = await this.one<{ v: number | null }>(`SELECT MAX(version) AS v FROM credentials WHERE tool = $1`, [tool]);
      const version = (row?.v ?? 0) + 1;
      const record: CredentialVersionRecord = { tool, version, sealed: sealedFor(version), description, createdAt: at };
      try {
        await this.driver.run(`INSERT INTO credentials (tool, version, sealed, description, created_at) VALUES ($1, $2, $3, $4, $5)`, [
          tool,
          version,
          record.sealed,
          description,
          at,
        ]);
        return record;
      } catch (err) {
        if (!(err instanceof UniqueViolation) || attempt >= 5) throw err;
      }
    }
  }

  async listCredentialVersions(tool?: string) {
    const rows =
      tool === undefined
        ? await this.driver.all<CredentialRow>(`SELECT * FROM credentials ORDER BY tool, version`)
        : await this.driver.all<CredentialRow>(`SELECT * FROM credentials WHERE tool = $1 ORDER BY version`, [tool]);
    return rows.map(toCredential);
  }

  async getCredentialVersion(tool: string, version: number) {
    const row = await this.one<CredentialRow>(`SELECT * FROM credentials WHERE tool = $1 AND version = $2`, [tool, version]);
    return row && toCredential(row);
  }

  async setActiveCredential(tool: string, version: number, at: number) {
    await this.driver.run(
      `INSERT INTO credential_active (tool, version, activated_at) VALUES ($1, $2, $3)
       ON CONFLICT (tool) DO UPDATE SET version = excluded.version, activated_at = excluded.activated_at`,
      [tool, version, at],
    );
  }

  async listActiveCredentials() {
    const rows = await this.driver.all<{ tool: string; version: number; activated_at: number }>(`SELECT * FROM credential_active ORDER BY tool`);
    return rows.map((r) => ({ tool: r.tool, version: r.version, activatedAt: r.activated_at }));
  }

  async insertAuditRecords(records: readonly AuditRecord[], head?: AuditChainHead) {
    if (records.length === 0 && head === undefined) return;
    // Multi-row inserts in chunks keep the parameter count under SQLite's limit.
    const chunkSize = 500;
    await this.driver.transaction(async (tx) => {
      for (let i = 0; i < records.length; i += chunkSize) {
        const chunk = records.slice(i, i + chunkSize);
        const values: SqlValue[] = [];
        for (const r of chunk) values.push(...auditRowValues(r));
        await tx.run(auditInsertSql(chunk.length), values);
      }
      if (head !== undefined) await tx.run(AUDIT_HEAD_UPSERT, auditHeadValues(head));
    });
  }

  openAuditWriter(options: { sqlite?: "thread" | "inline"; fsync?: boolean } = {}): AuditWriter {
    if (this.options.sqliteFile !== undefined && options.sqlite !== "inline")
      return openSqliteAuditWriter(this.options.sqliteFile, options.fsync === undefined ? {} : { fsync: options.fsync });
    // PostgreSQL: one multi-row insert and the head upsert per batch, committed (and fsynced) by the server.
    // SQLite inline: the same statements on the main connection, at most 64 records (well under a millisecond) per commit.
    const writer: AuditWriter = { write: (records, head) => this.insertAuditRecords(records, head), close: async () => undefined };
    return this.kind === "sqlite" ? { ...writer, maxBatch: 64 } : writer;
  }

  async listAuditChains() {
    return (await this.driver.all<AuditChainRow>(`SELECT * FROM audit_chains ORDER BY started_at, chain_id`)).map(toChainHead);
  }

  async auditChainIds() {
    return (await this.driver.all<{ chain_id: string }>(`SELECT DISTINCT chain_id FROM audit_log WHERE chain_id IS NOT NULL ORDER BY chain_id`)).map(
      (r) => r.chain_id,
    );
  }

  async auditChainRecords(chainId: string, afterSeq: number, limit: number) {
    const rows = await this.driver.all<AuditRow>(`SELECT * FROM audit_log WHERE chain_id = $1 AND chain_seq > $2 ORDER BY chain_seq LIMIT $3`, [
      chainId,
      afterSeq,
      limit,
    ]);
    return rows.map(toAudit);
  }

  async countUnchainedAudit() {
    return (await this.one<{ n: number }>(`SELECT COUNT(*) AS n FROM audit_log WHERE chain_id IS NULL`, []))?.n ?? 0;
  }

  async queryAudit(q: AuditQuery) {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (clause: string, value: SqlValue) => {
      params.push(value);
      where.push(clause.replace("?", `$${params.length}`));
    };
    if (q.agentId !== undefined) add("agent_id = ?", q.agentId);
    if (q.tool !== undefined) add("tool = ?", q.tool);
    if (q.decision !== undefined) add("decision = ?", q.decision);
    if (q.correlationId !== undefined) add("correlation_id = ?", q.correlationId);
    if (q.operator !== undefined) add("operator = ?", q.operator);
    if (q.kind === "call") where.push("operator IS NULL");
    if (q.kind === "admin") where.push("operator IS NOT NULL");
    if (q.door !== undefined) add("door = ?", q.door);
    if (q.from !== undefined) add("at >= ?", q.from);
    if (q.to !== undefined) add("at < ?", q.to);
    if (q.before !== undefined) {
      params.push(q.before.at, q.before.id);
      where.push(`(at < $${params.length - 1} OR (at = $${params.length - 1} AND id < $${params.length}))`);
    }
    params.push(q.limit);
    const rows = await this.driver.all<AuditRow>(
      `SELECT * FROM audit_log ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toAudit);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.driver.withMigrationLock(fn);
  }

  ping() {
    return this.driver.ping();
  }

  close() {
    return this.driver.close();
  }
}
