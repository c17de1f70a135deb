import path from "node:path";
import { migrate } from "./migrations.js";
import { openPostgresDriver, openSqliteDriver, type SqlDriver, type SqlValue } from "./sql-driver.js";

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

export interface Page {
  limit: number;
  offset: number;
}

/** The storage port. Both backends (embedded SQLite and PostgreSQL) pass the same contract suite. */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  readonly driver: SqlDriver;
  getMeta(key: string): Promise<string | undefined>;
  /** Sets `key` only if absent; returns the value that is stored afterwards (first writer wins). */
  setMetaIfAbsent(key: string, value: string): Promise<string>;

  /** @throws UniqueViolation when the id or name is taken. */
  insertAgent(agent: AgentRecord): Promise<void>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  listAgents(page: Page): Promise<AgentRecord[]>;
  setAgentStatus(id: string, status: AgentStatus, at: number): Promise<AgentRecord | undefined>;

  insertToken(token: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  /** Marks one token revoked; returns false when it does not exist. Revoking twice keeps the first time. */
  revokeToken(id: string, at: number, reason: string): Promise<boolean>;
  /** Revokes every live token of an agent; returns the ids revoked. */
  revokeAgentTokens(agentId: string, at: number, reason: string): Promise<string[]>;
  /** Ids of tokens revoked at or after `since` that have not yet expired at `now`. */
  listRevokedTokenIds(since: number, now: number): Promise<string[]>;

  /** Records an assertion's jti; returns false when it was already used (a replay). */
  useAssertionJti(agentId: string, jti: string, expiresAt: number): Promise<boolean>;
  pruneExpired(now: number): Promise<void>;

  insertSigningKey(key: SigningKeyRecord): Promise<void>;
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  retireSigningKey(kid: string, at: number): Promise<void>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  databaseUrl: string | undefined;
  databaseSchema: string;
  databasePoolSize: number;
  dataDir: string;
}

/** Opens the configured backend and applies pending migrations. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const driver =
    options.databaseUrl === undefined
      ? openSqliteDriver(path.join(options.dataDir, "gateway.db"))
      : await openPostgresDriver(options.databaseUrl, options.databaseSchema, options.databasePoolSize);
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close();
    throw err;
  }
  return new SqlStore(driver);
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
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});
const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id,
  agentId: r.agent_id,
  payloadHash: r.payload_hash,
  scopes: JSON.parse(r.scopes) as string[],
  intent: r.intent,
  issuedAt: Number(r.issued_at),
  expiresAt: Number(r.expires_at),
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  revokedReason: r.revoked_reason,
});
const toSigningKey = (r: SigningKeyRow): SigningKeyRecord => ({
  kid: r.kid,
  alg: r.alg,
  publicJwk: JSON.parse(r.public_jwk) as Record<string, unknown>,
  privateKeySealed: r.private_key_sealed,
  createdAt: Number(r.created_at),
  retiredAt: r.retired_at === null ? null : Number(r.retired_at),
});

/** The one Store implementation: plain SQL that both dialects accept. */
export class SqlStore implements Store {
  readonly kind: "sqlite" | "postgres";
  constructor(readonly driver: SqlDriver) {
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

  async listAgents(page: Page) {
    const rows = await this.driver.all<AgentRow>(`SELECT * FROM agents ORDER BY created_at, id LIMIT $1 OFFSET $2`, [
      page.limit,
      page.offset,
    ]);
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
    await this.driver.run(`UPDATE tokens SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL`, [
      at,
      reason,
      id,
    ]);
    return (await this.getToken(id)) !== undefined;
  }

  async revokeAgentTokens(agentId: string, at: number, reason: string) {
    return this.driver.transaction(async (tx) => {
      const rows = await tx.all<{ id: string }>(
        `SELECT id FROM tokens WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
        [agentId, at],
      );
      await tx.run(
        `UPDATE tokens SET revoked_at = $1, revoked_reason = $2 WHERE agent_id = $3 AND revoked_at IS NULL AND expires_at > $1`,
        [at, reason, agentId],
      );
      return rows.map((r) => r.id);
    });
  }

  async listRevokedTokenIds(since: number, now: number) {
    const rows = await this.driver.all<{ id: string }>(
      `SELECT id FROM tokens WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND expires_at > $2`,
      [since, now],
    );
    return rows.map((r) => r.id);
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
    await this.driver.run(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_key_sealed, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [k.kid, k.alg, JSON.stringify(k.publicJwk), k.privateKeySealed, k.createdAt, k.retiredAt],
    );
  }

  async listSigningKeys() {
    return (await this.driver.all<SigningKeyRow>(`SELECT * FROM signing_keys ORDER BY created_at, kid`)).map(toSigningKey);
  }

  async retireSigningKey(kid: string, at: number) {
    await this.driver.run(`UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL`, [at, kid]);
  }

  ping() {
    return this.driver.ping();
  }

  close() {
    return this.driver.close();
  }
}
