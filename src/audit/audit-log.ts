import { randomUUID } from "node:crypto";
import type { AuditRecord, AuditStore } from "../store/index.js";

export interface AuditLogOptions {
  store: AuditStore;
  now: () => number;
  /** How often buffered records are written. */
  flushIntervalMs?: number;
  /** Records kept while the store is unreachable; beyond it the oldest are dropped and counted. */
  maxBuffered?: number;
  onFlushError?: (err: unknown, buffered: number) => void;
  onDropped?: (count: number) => void;
}

export type AuditEntry = Omit<AuditRecord, "id" | "at"> & { at?: number };

/**
 * The audit trail, written in batches off the request path. A record handed to `record` is
 * written by the next flush; `close` flushes what is left, so a clean stop loses nothing.
 */
export class AuditLog {
  private buffer: AuditRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly maxBuffered: number;

  constructor(private readonly o: AuditLogOptions) {
    this.maxBuffered = o.maxBuffered ?? 100_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.o.flushIntervalMs ?? 250);
    this.timer.unref();
  }

  /** Queues one record; never blocks and never throws. */
  record(entry: AuditEntry): void {
    this.buffer.push({ id: randomUUID(), ...entry, at: entry.at ?? this.o.now() });
    if (this.buffer.length > this.maxBuffered) {
      const excess = this.buffer.length - this.maxBuffered;
      this.buffer.splice(0, excess);
      this.o.onDropped?.(excess);
    }
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Writes everything buffered so far; on failure the batch goes back to the buffer for the next try. */
  flush(): Promise<void> {
    if (this.flushing !== undefined) return this.flushing;
    if (this.buffer.length === 0) return Promise.resolve();
    // Assigned before the loop can finish, so `finally` always clears the promise it belongs to
    // (an async body with nothing to await would otherwise finish before the assignment and
    // leave a settled promise behind that blocks every later flush).
    let run: Promise<void> | undefined;
    run = (async () => {
      await Promise.resolve();
      try {
        while (this.buffer.length > 0) {
          const batch = this.buffer;
          this.buffer = [];
          try {
            await this.o.store.insertAuditRecords(batch);
          } catch (err) {
            this.buffer = batch.concat(this.buffer);
            this.o.onFlushError?.(err, this.buffer.length);
            return;
          }
        }
      } finally {
        if (this.flushing === run) this.flushing = undefined;
      }
    })();
    this.flushing = run;
    return run;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.flush();
    if (this.buffer.length > 0) await this.flush();
  }
}
