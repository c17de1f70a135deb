import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * The worker's source, plain JavaScript evaluated by `new Worker(…, { eval: true })` so it loads the
 * same way under tsx, vitest and the compiled build. Its own connection on the database file runs a
 * PASSIVE checkpoint every `intervalMs`: it copies committed WAL frames into the database file and
 * fsyncs both, without blocking the writer (frames still in use by a reader wait for the next round).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
const db = new Database(workerData.file);
db.pragma("synchronous = NORMAL");
db.pragma("busy_timeout = 0");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or a transient error: the next round tries again; the writer's backstop bounds the WAL meanwhile.
  }
}, workerData.intervalMs);
parentPort.on("message", (m) => {
  if (m === "close") {
    clearInterval(timer);
    db.close();
    parentPort.close();
  }
});
`;

/** Pages the WAL may reach before the writer checkpoints itself: the backstop if the thread falls behind. */
export const WRITER_BACKSTOP_PAGES = 10_000;

/**
 * Checkpoints of the embedded database's WAL on a thread of their own. SQLite's automatic
 * checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, on the connection that commits:
 * here the event loop, with two fsyncs (the WAL, then the database file) of 0.3–11 ms each, about
 * five times a second at 500 audited calls per second (each commit adds ~7 pages: the row, its four
 * indexes, the chain head). This thread copies the frames and pays those fsyncs instead. The WAL
 * file itself can only start over from a connection that begins a write while every frame is
 * copied, which under a steady stream of commits only the writer sees: so the writer keeps an
 * automatic checkpoint at `WRITER_BACKSTOP_PAGES` (seen every ~3 s at 500 calls/s, strace: three
 * fsyncs of 0.2–4 ms, cheap because the frames are already copied and the file already synced),
 * which also bounds the WAL if this thread falls behind or dies.
 */
export function startSqliteCheckpointer(file: string, intervalMs = 200): { close(): Promise<void> } {
  const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driverPath, file, intervalMs } });
  // Never what keeps the process alive.
  worker.unref();
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  // A failed checkpointer costs only the backstop's stalls: nothing to report to a caller.
  worker.on("error", () => undefined);
  return {
    async close() {
      if (exited) return;
      worker.ref();
      worker.postMessage("close");
      await exit;
    },
  };
}
