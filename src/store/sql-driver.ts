import { GatewayError } from "../errors/index.js";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { startSqliteCheckpointer, WRITER_BACKSTOP_PAGES } from "./sqlite-checkpointer.js";

export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

/** Raised when an insert or update breaks a unique or primary-key constraint. */
export class UniqueViolation extends Error {
  constructor(cause: unknown) {
    super("unique constraint violated", { cause });
    this.name = "UniqueViolation";
  }
}

/**
 * The little SQL both backends share. Statements use PostgreSQL's `$1` placeholders;
 * the SQLite driver rewrites them to `?1`. Integers come back as JS numbers on both.
 */
export interface SqlDriver {
  readonly dialect: "sqlite" | "postgres";
  all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /** Runs `fn` in one transaction; for PostgreSQL on one pooled connection. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  /** Serialises schema migrations across processes (an advisory lock on PostgreSQL). */
  withMigrationLock<T>(fn: () => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  poolStats(): { inUse: number; size: number };
  close(): Promise<void>;
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/** Connection-level failures (database down, restarting, unreachable): the store is unavailable, not broken. */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EPIPE",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08001",
  "08003",
  "08006",
]);

export function isStoreUnavailable(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) return true;
  const message = err instanceof Error ? err.message : "";
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}

function rethrow(err: unknown): never {
  if (isUniqueViolation(err)) throw new UniqueViolation(err);
  if (isStoreUnavailable(err))
    throw new GatewayError("service_unavailable", "the database is unreachable: writes are refused until it returns (calls for known agents keep working)", {
      retryAfterSeconds: 5,
      cause: err,
    });
  throw err;
}

const BUSY_GIVE_UP_MS = 5000;
const isBusy = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
};

/**
 * Runs a synchronous SQLite step; while another connection holds the write lock (SQLITE_BUSY),
 * retries after 1, 2, 4… (at most 20) ms on a timer, so waiting never blocks the event loop.
 * A busy statement has done nothing, so running it again is safe. Gives up after 5 s.
 */
async function whenFree<T>(step: () => T): Promise<T> {
  const giveUpAt = Date.now() + BUSY_GIVE_UP_MS;
  for (let delayMs = 1; ; delayMs = Math.min(20, delayMs * 2)) {
    try {
      return step();
    } catch (err) {
      if (!isBusy(err) || Date.now() > giveUpAt) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** Writes after which a database file gets its checkpoint thread: a short-lived one (a test, a CLI command) never starts it. */
const CHECKPOINT_THREAD_AFTER_WRITES = 200;

/**
 * Opens (creating if needed) the embedded SQLite database file. `checkpoint: "thread"` (the
 * default for a file) moves the WAL's checkpoints off the event loop once the database is busy
 * (see `startSqliteCheckpointer`); `"inline"` leaves them to SQLite's automatic checkpoint.
 */
export function openSqliteDriver(file: string, options: { checkpoint?: "thread" | "inline" } = {}): SqlDriver {
  if (file !== ":memory:") fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  // No busy wait inside SQLite: its busy handler sleeps on the calling thread, which here is the
  // event loop. The audit writer thread holds the write lock for its short commits; a statement that
  // finds it taken gets SQLITE_BUSY at once and is retried after a timer (see `whenFree`).
  db.pragma("busy_timeout = 0");
  // better-sqlite3 binds only anonymous `?` from an array, so `$n` becomes `?` and the
  // parameters are re-ordered (and repeated) to match each occurrence.
  const statements = new Map<string, { stmt: Database.Statement; order: number[] }>();
  const prepared = (sql: string, params: readonly SqlValue[]): { stmt: Database.Statement; values: SqlValue[] } => {
    let entry = statements.get(sql);
    if (entry === undefined) {
      const order: number[] = [];
      const stmt = db.prepare(
        sql.replace(/\$(\d+)/g, (_m, n: string) => {
          order.push(Number(n) - 1);
          return "?";
        }),
      );
      entry = { stmt, order };
      statements.set(sql, entry);
    }
    return { stmt: entry.stmt, values: entry.order.map((i) => params[i] ?? null) };
  };
  // Prepared once: `exec` would parse these again on every transaction (the audit commits one per call or batch).
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const rollback = db.prepare("ROLLBACK");
  let closed = false;
  let writes = options.checkpoint === "inline" || file === ":memory:" ? -Infinity : 0;
  let checkpointer: { close(): Promise<void> } | undefined;
  const wrote = () => {
    if (++writes !== CHECKPOINT_THREAD_AFTER_WRITES) return;
    db.pragma(`wal_autocheckpoint = ${WRITER_BACKSTOP_PAGES}`);
    checkpointer = startSqliteCheckpointer(file);
  };
  // While a transaction is open, callers outside it wait, so their statements
  // never land inside (and roll back with) someone else's transaction.
  let pendingTransaction: Promise<unknown> | undefined;
  let lockChain: Promise<unknown> = Promise.resolve();
  // Callers loop inline (no helper call) so nothing can start between the check and the statement.
  const settled = (p: Promise<unknown>): Promise<unknown> => p.catch(() => undefined);
  const direct: Omit<SqlDriver, "transaction"> = {
    dialect: "sqlite",
    async all<T>(sql: string, params: readonly SqlValue[] = []) {
      try {
        const { stmt, values } = prepared(sql, params);
        return await whenFree(() => stmt.all(...values) as T[]);
      } catch (err) {
        return rethrow(err);
      }
    },
    async run(sql, params = []) {
      try {
        const { stmt, values } = prepared(sql, params);
        return await whenFree(() => {
          if (!stmt.reader) {
            const { changes } = stmt.run(...values);
            wrote();
            return { changes };
          }
          stmt.all(...values);
          return { changes: 0 };
        });
      } catch (err) {
        return rethrow(err);
      }
    },
    async withMigrationLock(fn) {
      // One process owns the file: a promise chain is the lock (one-time steps never overlap).
      const run = lockChain.then(fn, fn);
      lockChain = run.catch(() => undefined);
      return run;
    },
    async ping() {
      db.prepare("SELECT 1").get();
    },
    poolStats() {
      return { inUse: pendingTransaction === undefined ? 0 : 1, size: 1 };
    },
    async close() {
      while (pendingTransaction !== undefined) await settled(pendingTransaction);
      if (!closed) {
        closed = true;
        await checkpointer?.close();
        db.close();
      }
    },
  };
  const inTransaction: SqlDriver = { ...direct, transaction: (fn) => fn(inTransaction) };
  return {
    ...direct,
    async all(sql, params) {
      while (pendingTransaction !== undefined) await settled(pendingTransaction);
      return direct.all(sql, params);
    },
    async run(sql, params) {
      while (pendingTransaction !== undefined) await settled(pendingTransaction);
      return direct.run(sql, params);
    },
    async transaction(fn) {
      while (pendingTransaction !== undefined) await settled(pendingTransaction);
      const work = (async () => {
        await whenFree(() => begin.run());
        try {
          const result = await fn(inTransaction);
          commit.run();
          wrote();
          return result;
        } catch (err) {
          if (db.inTransaction) rollback.run();
          throw err;
        }
      })();
      pendingTransaction = work;
      try {
        return await work;
      } finally {
        if (pendingTransaction === work) pendingTransaction = undefined;
      }
    },
  };
}

const { INT8: BIGINT_OID, NUMERIC: NUMERIC_OID } = pg.types.builtins;
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser(oid, format) {
    if (oid === BIGINT_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format) as unknown;
  },
};

/** Connects a pool to PostgreSQL, creating and selecting `schema`. */
export async function openPostgresDriver(url: string, schema: string, poolSize: number): Promise<SqlDriver> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const bootstrap = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await bootstrap.connect();
  try {
    await bootstrap.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } catch (err) {
    // Two instances racing to create the same schema: the loser sees a unique violation.
    if (!isUniqueViolation(err)) throw err;
  } finally {
    await bootstrap.end();
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    options: `-c search_path="${schema}"`,
    types: pgTypes,
  });
  // An idle client losing its connection must not crash the process.
  pool.on("error", () => undefined);

  const over = (client: pg.Pool | pg.PoolClient): Omit<SqlDriver, "transaction" | "withMigrationLock" | "close" | "poolStats"> => ({
    dialect: "postgres",
    async all<T>(sql: string, params: readonly SqlValue[] = []) {
      try {
        return (await client.query(sql, params as SqlValue[])).rows as T[];
      } catch (err) {
        return rethrow(err);
      }
    },
    async run(sql, params = []) {
      try {
        return { changes: (await client.query(sql, params as SqlValue[])).rowCount ?? 0 };
      } catch (err) {
        return rethrow(err);
      }
    },
    async ping() {
      await client.query("SELECT 1");
    },
  });

  const onConnection = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect().catch(rethrow);
    try {
      return await fn(client);
    } finally {
      client.release();
    }
  };

  const driver: SqlDriver = {
    ...over(pool),
    async transaction(fn) {
      return onConnection(async (client) => {
        await client.query("BEGIN");
        const tx: SqlDriver = {
          ...over(client),
          transaction: (inner) => inner(tx),
          withMigrationLock: (inner) => inner(),
          poolStats: () => driver.poolStats(),
          close: async () => undefined,
        };
        try {
          const result = await fn(tx);
          await client.query("COMMIT");
          return result;
        } catch (err) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw err;
        }
      });
    },
    async withMigrationLock(fn) {
      // A dedicated connection holds the lock, so a pool of one can still run the migrations.
      const lockClient = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      await lockClient.connect();
      try {
        await lockClient.query("SELECT pg_advisory_lock(hashtext($1))", [`4runr-migrations:${schema}`]);
        return await fn();
      } finally {
        await lockClient.end().catch(() => undefined);
      }
    },
    poolStats() {
      return { inUse: pool.totalCount - pool.idleCount, size: poolSize };
    },
    async close() {
      await pool.end();
    },
  };
  return driver;
}
