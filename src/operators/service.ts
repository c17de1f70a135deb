import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { GatewayError } from "../errors/index.js";
import { UniqueViolation, type SqlDriver } from "../store/index.js";
import { isOperatorRole, type OperatorRole } from "./roles.js";

export type OperatorStatus = "active" | "disabled";

export interface OperatorRecord {
  id: string;
  name: string;
  role: OperatorRole;
  status: OperatorStatus;
  createdAt: number;
  updatedAt: number;
  keyRotatedAt: number;
}

/** Who is acting: a named operator, or the bootstrap admin key (which has no row). */
export interface OperatorIdentity {
  id: string;
  name: string;
  role: OperatorRole;
}

export interface ConsoleSession {
  operator: OperatorIdentity;
  csrfToken: string;
  expiresAt: number;
}

/** A live console session as operators see it: a short handle, never the id or its hash. */
export interface SessionSummary {
  /** The first 12 hex digits of the session id's hash: enough to name it, useless to sign in. */
  handle: string;
  operator: { id: string; name: string };
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

const HANDLE = /^[0-9a-f]{12}$/;

/** The bootstrap admin key acts as this operator. */
export const BOOTSTRAP_OPERATOR: OperatorIdentity = Object.freeze({ id: "bootstrap", name: "bootstrap-admin", role: "admin" });

const KEY_PREFIX = "op_";
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** sha256 of a secret, hex: keys and session ids are stored only this way. */
const digest = (secret: string) => createHash("sha256").update(secret).digest("hex");

interface OperatorRow {
  id: string;
  name: string;
  role: string;
  status: string;
  key_hash: string;
  created_at: number;
  updated_at: number;
  key_rotated_at: number;
}

const toOperator = (r: OperatorRow): OperatorRecord => ({
  id: r.id,
  name: r.name,
  role: r.role as OperatorRole,
  status: r.status as OperatorStatus,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  keyRotatedAt: r.key_rotated_at,
});

/**
 * Named operator keys with a role, and console sessions. Keys and session ids are random 256-bit
 * values stored only as their sha256, looked up by that hash and compared in constant time.
 * Sessions live in the database so every instance of a scaled-out gateway honours them.
 */
export class OperatorService {
  private readonly bootstrapKeyHash: Buffer;
  /** Owner of the bootstrap key's sessions: names the key itself, so a changed admin key ends them. */
  private readonly bootstrapSessionOwner: string;

  constructor(
    private readonly o: {
      driver: SqlDriver;
      bootstrapAdminKey: string;
      now: () => number;
      session: { ttlSeconds: number; idleSeconds: number };
    },
  ) {
    this.bootstrapKeyHash = Buffer.from(digest(o.bootstrapAdminKey), "hex");
    this.bootstrapSessionOwner = `${BOOTSTRAP_OPERATOR.id}:${digest(this.bootstrapKeyHash.toString("hex")).slice(0, 16)}`;
  }

  /** Creates an operator; the key is returned here only. @throws GatewayError invalid_request | conflict */
  async create(input: { name: string; role: string }): Promise<{ operator: OperatorRecord; key: string }> {
    if (!NAME.test(input.name))
      throw new GatewayError("invalid_request", "name: lower-case letters, digits, '.', '_' or '-', at most 64", { details: { field: "name" } });
    if (!isOperatorRole(input.role)) throw new GatewayError("invalid_request", "role: one of viewer, approver, admin", { details: { field: "role" } });
    if (input.name === BOOTSTRAP_OPERATOR.name) throw new GatewayError("conflict", `"${BOOTSTRAP_OPERATOR.name}" is the bootstrap admin key's name`);
    const key = newKey();
    const at = this.o.now();
    const id = `op_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    try {
      await this.o.driver.run(
        `INSERT INTO operators (id, name, role, status, key_hash, created_at, updated_at, key_rotated_at) VALUES ($1, $2, $3, 'active', $4, $5, $5, $5)`,
        [id, input.name, input.role, digest(key), at],
      );
    } catch (err) {
      if (err instanceof UniqueViolation) throw new GatewayError("conflict", `an operator named "${input.name}" already exists`);
      throw err;
    }
    return { operator: (await this.find(id))!, key };
  }

  async list(): Promise<OperatorRecord[]> {
    return (await this.o.driver.all<OperatorRow>(`SELECT * FROM operators ORDER BY created_at, id`)).map(toOperator);
  }

  /** @throws GatewayError operator_not_found */
  async get(id: string): Promise<OperatorRecord> {
    const found = await this.find(id);
    if (found === undefined) throw new GatewayError("operator_not_found", `no operator with id "${id.slice(0, 80)}"`);
    return found;
  }

  /** Disables or re-enables an operator; disabling ends its console sessions at once. */
  async setStatus(id: string, status: OperatorStatus): Promise<OperatorRecord> {
    await this.get(id);
    await this.o.driver.run(`UPDATE operators SET status = $1, updated_at = $2 WHERE id = $3`, [status, this.o.now(), id]);
    if (status === "disabled") await this.o.driver.run(`DELETE FROM operator_sessions WHERE operator_id = $1`, [id]);
    return this.get(id);
  }

  /** Replaces an operator's key (returned here only); the old key and its sessions stop working at once. */
  async rotateKey(id: string): Promise<{ operator: OperatorRecord; key: string }> {
    await this.get(id);
    const key = newKey();
    const at = this.o.now();
    await this.o.driver.run(`UPDATE operators SET key_hash = $1, updated_at = $2, key_rotated_at = $2 WHERE id = $3`, [digest(key), at, id]);
    await this.o.driver.run(`DELETE FROM operator_sessions WHERE operator_id = $1`, [id]);
    return { operator: await this.get(id), key };
  }

  /** Who holds this key: the bootstrap admin, an active operator, or nobody. */
  async authenticateKey(key: string | undefined): Promise<OperatorIdentity | undefined> {
    if (key === undefined || key.length > 512) return undefined;
    const presented = Buffer.from(digest(key), "hex");
    if (timingSafeEqual(presented, this.bootstrapKeyHash)) return BOOTSTRAP_OPERATOR;
    if (!key.startsWith(KEY_PREFIX)) return undefined;
    const row = (await this.o.driver.all<OperatorRow>(`SELECT * FROM operators WHERE key_hash = $1`, [presented.toString("hex")]))[0];
    // The lookup is by hash; the comparison confirms it in constant time all the same.
    if (row === undefined || !timingSafeEqual(Buffer.from(row.key_hash, "hex"), presented) || row.status !== "active") return undefined;
    return { id: row.id, name: row.name, role: row.role as OperatorRole };
  }

  /** Opens a console session for an operator; the session id goes into the cookie and nowhere else. */
  async openSession(operator: OperatorIdentity): Promise<{ sessionId: string; session: ConsoleSession }> {
    const sessionId = randomBytes(32).toString("base64url");
    const csrfToken = randomBytes(32).toString("base64url");
    const at = this.o.now();
    const expiresAt = at + this.o.session.ttlSeconds * 1000;
    await this.o.driver.run(
      `INSERT INTO operator_sessions (id_hash, operator_id, csrf_token, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`,
      [digest(sessionId), operator.id === BOOTSTRAP_OPERATOR.id ? this.bootstrapSessionOwner : operator.id, csrfToken, at, expiresAt],
    );
    await this.o.driver.run(`DELETE FROM operator_sessions WHERE expires_at < $1`, [at]);
    return { sessionId, session: { operator, csrfToken, expiresAt } };
  }

  /**
   * The live session for a cookie value, or why there is none. A session ends at its absolute
   * expiry, after `idleSeconds` without a request, or when its operator is disabled or rotated.
   */
  async resolveSession(sessionId: string): Promise<ConsoleSession | "expired" | undefined> {
    if (sessionId.length > 128) return undefined;
    const idHash = digest(sessionId);
    const row = (
      await this.o.driver.all<{ operator_id: string; csrf_token: string; last_seen_at: number; expires_at: number }>(
        `SELECT operator_id, csrf_token, last_seen_at, expires_at FROM operator_sessions WHERE id_hash = $1`,
        [idHash],
      )
    )[0];
    if (row === undefined) return undefined;
    const at = this.o.now();
    if (at >= row.expires_at || at - row.last_seen_at >= this.o.session.idleSeconds * 1000) {
      await this.o.driver.run(`DELETE FROM operator_sessions WHERE id_hash = $1`, [idHash]);
      return "expired";
    }
    const operator = row.operator_id.startsWith(`${BOOTSTRAP_OPERATOR.id}:`)
      ? row.operator_id === this.bootstrapSessionOwner
        ? BOOTSTRAP_OPERATOR
        : undefined
      : await this.activeIdentity(row.operator_id);
    if (operator === undefined) return undefined;
    // Refreshing last_seen on every request would write on every read; once a minute is enough for the idle timeout.
    if (at - row.last_seen_at > 60_000) await this.o.driver.run(`UPDATE operator_sessions SET last_seen_at = $1 WHERE id_hash = $2`, [at, idHash]);
    return { operator, csrfToken: row.csrf_token, expiresAt: row.expires_at };
  }

  async closeSession(sessionId: string): Promise<void> {
    await this.o.driver.run(`DELETE FROM operator_sessions WHERE id_hash = $1`, [digest(sessionId)]);
  }

  /** The handle of a session id (to mark the caller's own session in a list). */
  handleOf(sessionId: string): string {
    return digest(sessionId).slice(0, 12);
  }

  /** Sessions that are still live (neither expired nor idle too long), newest first. */
  async listSessions(): Promise<SessionSummary[]> {
    const at = this.o.now();
    const rows = await this.o.driver.all<{
      id_hash: string;
      operator_id: string;
      created_at: number;
      last_seen_at: number;
      expires_at: number;
      name: string | null;
    }>(
      `SELECT s.id_hash, s.operator_id, s.created_at, s.last_seen_at, s.expires_at, o.name
       FROM operator_sessions s LEFT JOIN operators o ON o.id = s.operator_id
       WHERE s.expires_at > $1 AND s.last_seen_at > $2 ORDER BY s.created_at DESC, s.id_hash`,
      [at, at - this.o.session.idleSeconds * 1000],
    );
    return rows
      .filter((r) => r.name !== null || r.operator_id === this.bootstrapSessionOwner)
      .map((r) => ({
        handle: r.id_hash.slice(0, 12),
        operator: r.name === null ? { id: BOOTSTRAP_OPERATOR.id, name: BOOTSTRAP_OPERATOR.name } : { id: r.operator_id, name: r.name },
        createdAt: r.created_at,
        lastSeenAt: r.last_seen_at,
        expiresAt: r.expires_at,
      }));
  }

  /** Ends the session with this handle. @throws GatewayError invalid_request | not_found */
  async endSession(handle: string): Promise<void> {
    if (!HANDLE.test(handle))
      throw new GatewayError("invalid_request", "handle: 12 hex digits, as GET /api/operators/sessions lists them", { details: { field: "handle" } });
    const { changes } = await this.o.driver.run(`DELETE FROM operator_sessions WHERE id_hash LIKE $1`, [`${handle}%`]);
    if (changes === 0) throw new GatewayError("not_found", `no live session with handle ${handle}`);
  }

  private async find(id: string): Promise<OperatorRecord | undefined> {
    const row = (await this.o.driver.all<OperatorRow>(`SELECT * FROM operators WHERE id = $1`, [id]))[0];
    return row && toOperator(row);
  }

  private async activeIdentity(id: string): Promise<OperatorIdentity | undefined> {
    const found = await this.find(id);
    return found?.status === "active" ? { id: found.id, name: found.name, role: found.role } : undefined;
  }
}

function newKey(): string {
  return `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/** Compares two tokens in constant time (equal lengths are not assumed). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(digest(a), "hex"), Buffer.from(digest(b), "hex"));
}
