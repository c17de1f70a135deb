import { timeOrderedUuid } from "../util/time-ordered-id.js";
import { GatewayError } from "../errors/index.js";
import type { AuditChainFields, AuditChainHead, AuditRecord, AuditWriter } from "../store/index.js";
import { genesisHash, headMac, paramsHmac, recordHash, type AuditKeys } from "./chain.js";

/** What the gateway does when the audit trail cannot be written: refuse calls (503) or serve them and count. */
export type AuditFailureMode = "closed" | "open";

/** How a record ended: durable before the answer, or (open mode only) not, and counted. */
export type AuditReceipt = { durable: true } | { durable: false; reason: "write_failed" | "unavailable" | "dropped" | "closed" };

/** Hooks for metrics and logs. */
export interface AuditEvents {
  /** One group commit: how many records and how long the durable write took. */
  committed?(records: number, durationMs: number): void;
  writeFailed?(err: unknown, buffered: number): void;
  /** Records removed from a full buffer (each already answered, or answered now as failed). */
  dropped?(count: number): void;
  /** A call answered without a durable record: served (open mode) or refused with 503 (closed mode). */
  unrecorded?(outcome: "served" | "refused"): void;
  healthChanged?(healthy: boolean, err?: unknown): void;
  /** Records still unwritten when the log was closed (the store stayed unreachable). */
  lostAtClose?(count: number): void;
}

export interface AuditLogOptions {
  writer: AuditWriter;
  now: () => number;
  /** This instance's chain (its instance id): every record it writes is linked into it. */
  chainId: string;
  keys: AuditKeys;
  failureMode?: AuditFailureMode;
  /** Records kept for retry while the store is unreachable; beyond it the oldest are dropped and counted. */
  maxBuffered?: number;
  /** Most records in one commit. */
  maxBatch?: number;
  /** First and longest wait before retrying a failed write. */
  retryMinMs?: number;
  retryMaxMs?: number;
  events?: AuditEvents;
}

/** What the road hands in: the record without its id, chain links, and optionally its time. */
export type AuditEntry = Omit<AuditRecord, "id" | "at" | AuditChainFields> & { at?: number };

type Unchained = Omit<AuditRecord, AuditChainFields>;
interface Waiting {
  record: Unchained;
  /** Set once the caller has its answer; a record answered as failed is still retried and written later. */
  answered: boolean;
  resolve(receipt: AuditReceipt): void;
  reject(err: unknown): void;
}

/**
 * The audit trail with group commit. `record` queues a record and returns a promise that resolves
 * once the record is durably written: all records waiting when a commit starts go in that one
 * commit (one transaction, one fsync), and records arriving during it go in the next. So the added
 * latency is about one commit, and under load one write serves many calls.
 *
 * Each commit links its records into this instance's hash chain (see chain.ts) starting from the
 * last durable head, so a failed commit leaves no gap: its records are retried with the same links.
 *
 * When a write fails the log turns unhealthy until a retry succeeds. `closed` mode: every waiting
 * and new record's promise rejects with a 503, and `assertWritable` refuses new calls up front.
 * `open` mode: promises resolve `{ durable: false }` (counted). In both modes the records stay
 * queued (bounded, drops counted) and are written when the store is back.
 */
export class AuditLog {
  private queue: Waiting[] = [];
  private inFlight: Waiting[] = [];
  private committing = false;
  private healthy = true;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private idleWaiters: (() => void)[] = [];
  private head: { seq: number; hash: string };
  private readonly startedAt: number;
  private readonly mode: AuditFailureMode;
  private readonly maxBuffered: number;
  private readonly maxBatch: number;

  constructor(private readonly o: AuditLogOptions) {
    this.mode = o.failureMode ?? "closed";
    this.maxBuffered = o.maxBuffered ?? 100_000;
    this.maxBatch = Math.min(o.maxBatch ?? 1000, o.writer.maxBatch ?? Number.POSITIVE_INFINITY);
    this.retryDelayMs = o.retryMinMs ?? 50;
    this.head = { seq: 0, hash: genesisHash(o.keys.chain, o.chainId) };
    this.startedAt = o.now();
  }

  get failureMode(): AuditFailureMode {
    return this.mode;
  }

  get chainId(): string {
    return this.o.chainId;
  }

  /** False from a failed write until a retry succeeds. */
  get isHealthy(): boolean {
    return this.healthy;
  }

  /** Records not yet durable (queued or being committed). */
  get pending(): number {
    return this.queue.length + this.inFlight.length;
  }

  /** The parameters' fingerprint for the record (an HMAC with the audit key). Never throws. */
  paramsHash(params: unknown): string | null {
    try {
      return paramsHmac(this.o.keys.params, params);
    } catch {
      return null;
    }
  }

  /**
   * In closed mode while the trail cannot be written, refuses a new call before it does anything.
   * @throws GatewayError service_unavailable (503)
   */
  assertWritable(): void {
    if (this.mode === "closed" && (!this.healthy || this.closed)) throw this.unavailable();
  }

  /**
   * Queues one record. Never throws; the promise resolves when the record is durable. When it
   * cannot be: rejects with a 503 GatewayError in closed mode, resolves `{ durable: false }` in open mode.
   */
  record(entry: AuditEntry): Promise<AuditReceipt> {
    return new Promise<AuditReceipt>((resolve, reject) => {
      const waiting: Waiting = { record: { ...entry, id: timeOrderedUuid(), at: entry.at ?? this.o.now() }, answered: false, resolve, reject };
      if (this.closed) {
        this.answerFailed(waiting, "closed");
        return;
      }
      this.queue.push(waiting);
      this.enforceBound();
      if (!this.healthy) this.answerFailed(waiting, "unavailable");
      else this.scheduleCommit();
    });
  }

  /** Resolves once every record queued so far has been written or its write has failed. */
  flush(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    if (!this.committing && this.retryTimer === undefined) this.scheduleCommit();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes what is left (a few tries), then stops the writer. Records that still cannot be written are reported. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    for (let attempt = 0; attempt < 3 && this.pending > 0; attempt++) {
      while (this.committing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      if (this.queue.length > 0) await this.commitLoop();
    }
    if (this.queue.length > 0) {
      this.o.events?.lostAtClose?.(this.queue.length);
      for (const w of this.queue) this.answerFailed(w, "closed");
      this.queue = [];
    }
    await this.o.writer.close();
  }

  private unavailable(): GatewayError {
    return new GatewayError("service_unavailable", "the audit trail cannot be written: calls are refused until it can (AUDIT_FAILURE_MODE=closed)", {
      retryAfterSeconds: 1,
      details: { reason: "audit_unavailable" },
    });
  }

  private answerFailed(w: Waiting, reason: Exclude<AuditReceipt, { durable: true }>["reason"]): void {
    if (w.answered) return;
    w.answered = true;
    if (this.mode === "closed") {
      this.o.events?.unrecorded?.("refused");
      w.reject(this.unavailable());
    } else {
      this.o.events?.unrecorded?.("served");
      w.resolve({ durable: false, reason });
    }
  }

  private enforceBound(): void {
    const excess = this.pending - this.maxBuffered;
    if (excess <= 0) return;
    const dropped = this.queue.splice(0, Math.min(excess, this.queue.length));
    for (const w of dropped) this.answerFailed(w, "dropped");
    this.o.events?.dropped?.(dropped.length);
  }

  private scheduleCommit(): void {
    if (this.committing || this.retryTimer !== undefined) return;
    this.committing = true;
    // setImmediate, not a microtask: every record queued in this turn of the event loop joins the commit.
    setImmediate(() => void this.commitLoop());
  }

  private setHealthy(healthy: boolean, err?: unknown): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.o.events?.healthChanged?.(healthy, err);
  }

  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      // An unhealthy log with nothing queued still probes the store (by re-writing its head), so it can recover.
      let probe = !this.healthy && this.queue.length === 0;
      while (this.queue.length > 0 || probe) {
        probe = false;
        const batch = this.queue.splice(0, this.maxBatch);
        this.inFlight = batch;
        const { records, head } = this.link(batch);
        const startedMs = performance.now();
        try {
          await this.o.writer.write(records, head);
        } catch (err) {
          this.inFlight = [];
          this.queue = batch.concat(this.queue);
          this.setHealthy(false, err);
          this.o.events?.writeFailed?.(err, this.pending);
          for (const w of batch) this.answerFailed(w, "write_failed");
          if (!this.closed) this.scheduleRetry();
          return;
        }
        this.inFlight = [];
        this.head = { seq: head.headSeq, hash: head.headHash };
        this.retryDelayMs = this.o.retryMinMs ?? 50;
        this.setHealthy(true);
        this.o.events?.committed?.(records.length, performance.now() - startedMs);
        for (const w of batch) {
          if (w.answered) continue;
          w.answered = true;
          w.resolve({ durable: true });
        }
      }
    } finally {
      this.committing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private scheduleRetry(): void {
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.o.retryMaxMs ?? 2000, this.retryDelayMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.commitLoop();
    }, delay);
    this.retryTimer.unref();
  }

  /** Links a batch into the chain after the durable head; pure, so a retried batch gets the same links. */
  private link(batch: readonly Waiting[]): { records: AuditRecord[]; head: AuditChainHead } {
    const key = this.o.keys.chain;
    let { seq, hash } = this.head;
    const records = batch.map((w) => {
      const record: AuditRecord = { ...w.record, chainId: this.o.chainId, chainSeq: ++seq, prevHash: hash, hash: null };
      record.hash = recordHash(key, record);
      hash = record.hash;
      return record;
    });
    return {
      records,
      head: {
        chainId: this.o.chainId,
        startedAt: this.startedAt,
        headSeq: seq,
        headHash: hash,
        headMac: headMac(key, this.o.chainId, seq, hash),
        updatedAt: this.o.now(),
      },
    };
  }
}
