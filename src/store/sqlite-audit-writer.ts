import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { AUDIT_HEAD_UPSERT, AUDIT_INSERT_COLUMNS, auditHeadValues, auditRowValues } from "./audit-sql.js";
import type { SqlValue } from "./sql-driver.js";
import type { AuditWriter } from "./store.js";

/**
 * The worker's source, plain JavaScript evaluated by `new Worker(…, { eval: true })`, so it loads
 * the same way under tsx, vitest and the compiled build. It owns one SQLite connection of its own
 * on the gateway's database file (WAL mode lets it write while the main connection reads). With
 * `fsync` (the default), `synchronous=FULL`: the WAL is fsynced before each commit returns, and that
 * wait happens here, never on the event loop; without, `synchronous=NORMAL` like the main connection.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
const db = new Database(workerData.file);
db.pragma("journal_mode = WAL");
db.pragma(workerData.fsync ? "synchronous = FULL" : "synchronous = NORMAL");
db.pragma("busy_timeout = 5000");
const insert = db.prepare(workerData.insertSql);
const head = db.prepare(workerData.headSql);
const write = db.transaction((rows, headValues) => {
  for (const row of rows) insert.run(row);
  head.run(headValues);
});
parentPort.on("message", (m) => {
  if (m.type === "close") {
    db.close();
    parentPort.close();
    return;
  }
  try {
    write(m.rows, m.head);
    parentPort.postMessage({ id: m.id, ok: true });
  } catch (err) {
    parentPort.postMessage({ id: m.id, ok: false, message: String(err && err.message || err), code: err && err.code });
  }
});
`;

const positional = (sql: string) => sql.replace(/\$\d+/g, "?");

/** Raised when the audit worker could not write a batch (the SQLite error's code is kept). */
export class AuditWriteError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "AuditWriteError";
  }
}

/**
 * The embedded store's audit writer: batches go to a worker thread that inserts them and the chain
 * head in one transaction. A write resolves only after SQLite has committed (and fsynced) it. If
 * the worker dies, pending writes reject and the next write starts a new one.
 */
export function openSqliteAuditWriter(file: string, options: { fsync?: boolean } = {}): AuditWriter {
  const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");
  const workerData = {
    driverPath,
    file,
    fsync: options.fsync ?? true,
    insertSql: positional(
      `INSERT INTO audit_log (${AUDIT_INSERT_COLUMNS}) VALUES (${AUDIT_INSERT_COLUMNS.split(",")
        .map((_, i) => `$${i + 1}`)
        .join(", ")}) ON CONFLICT (id) DO NOTHING`,
    ),
    headSql: positional(AUDIT_HEAD_UPSERT),
  };
  let worker: Worker | undefined;
  let nextId = 0;
  let closed = false;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const start = (): Worker => {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData });
    // The worker keeps the process alive only while a write (or close) is waiting on it.
    w.unref();
    w.on("message", (m: { id: number; ok: boolean; message?: string; code?: string }) => {
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (pending.size === 0) w.unref();
      if (m.ok) p.resolve();
      else p.reject(new AuditWriteError(m.message ?? "audit write failed", m.code));
    });
    w.on("error", (err) => {
      if (worker === w) worker = undefined;
      failAll(new AuditWriteError(`audit writer thread failed: ${err.message}`));
    });
    w.on("exit", () => {
      if (worker === w) worker = undefined;
      failAll(new AuditWriteError("audit writer thread exited"));
    });
    return w;
  };
  return {
    write(records, head) {
      if (closed) return Promise.reject(new AuditWriteError("audit writer is closed"));
      worker ??= start();
      const id = ++nextId;
      const rows: SqlValue[][] = records.map(auditRowValues);
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker!.ref();
        worker!.postMessage({ id, rows, head: auditHeadValues(head) });
      });
    },
    async close() {
      closed = true;
      const w = worker;
      if (w === undefined) return;
      // Messages are handled in order: every write sent before this one has been answered when the worker exits.
      const exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
      w.ref();
      w.postMessage({ type: "close" });
      await exited;
    },
  };
}
