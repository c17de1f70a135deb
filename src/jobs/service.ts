import { randomUUID } from "node:crypto";
import { GatewayError, isGatewayError } from "../errors/index.js";
import type { AcceptedCall, ProxyInput, ProxyRoad } from "../proxy/index.js";
import { open, seal, type SealedEnvelope } from "../vault/envelope.js";
import type { CallbackSender } from "./callbacks.js";
import type { JobRecord, JobStatus, JobStore } from "./job-store.js";

export interface JobView {
  jobId: string;
  status: JobStatus;
  tool: string;
  action: string;
  agentId: string;
  attempts: number;
  correlationId: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result?: unknown;
  error?: { code: string; message: string; status: number };
}

export interface JobServiceOptions {
  store: JobStore;
  road: ProxyRoad;
  masterKey: Buffer;
  now: () => number;
  /** Identifies this instance's worker in leases. */
  instanceId: string;
  concurrency?: number;
  /** How long a claimed job is reserved; a dead worker's job is taken over after it. */
  leaseMs?: number;
  pollMs?: number;
  /** Claims of one job (crashed workers included) before it is failed as abandoned. */
  maxAttempts?: number;
  callbacks?: CallbackSender;
  onError?: (err: unknown, jobId?: string) => void;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Async jobs: accepted after the same checks as a synchronous call, run by any instance's worker. */
export class JobService {
  private running = false;
  private active = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: JobServiceOptions) {}

  /**
   * Runs the road's checks now (a denied call is denied at once) and queues the call durably,
   * sealed. When it runs, the road checks it again (token, agent, policy) before anything is sent.
   */
  async submit(input: ProxyInput, callbackUrl: string | undefined): Promise<JobView> {
    let accepted: JobRecord | undefined;
    const { jobId } = await this.o.road.accept({ ...input, door: "job" }, async (call) => {
      const id = randomUUID();
      const sealed = seal(this.o.masterKey, JSON.stringify(call), `job:${id}`);
      await this.o.store.insert({
        id,
        agentId: call.agentId,
        tool: call.tool,
        action: call.action,
        sealedCall: JSON.stringify(sealed),
        correlationId: input.correlationId,
        callbackUrl: callbackUrl ?? null,
        createdAt: this.o.now(),
      });
      // The job as accepted: a worker may claim it while the answer waits for its audit record.
      accepted = await this.o.store.get(id);
      return id;
    });
    this.wake?.();
    return this.view(accepted ?? (await this.o.store.get(jobId))!);
  }

  /** @throws GatewayError job_not_found (also when `agentId` is given and the job is someone else's) */
  async get(id: string, agentId?: string): Promise<JobView> {
    const job = await this.o.store.get(id);
    if (job === undefined || (agentId !== undefined && job.agentId !== agentId)) throw new GatewayError("job_not_found", `no job with id "${id.slice(0, 80)}"`);
    return this.view(job);
  }

  private view(job: JobRecord): JobView {
    const out: JobView = {
      jobId: job.id,
      status: job.status,
      tool: job.tool,
      action: job.action,
      agentId: job.agentId,
      attempts: job.attempts,
      correlationId: job.correlationId,
      createdAt: iso(job.createdAt)!,
      startedAt: iso(job.startedAt),
      finishedAt: iso(job.finishedAt),
    };
    if (job.result !== null) out.result = JSON.parse(job.result);
    if (job.error !== null) out.error = JSON.parse(job.error) as JobView["error"] & object;
    return out;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops claiming, and waits for the jobs in hand to finish. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.active]);
  }

  private async run(): Promise<void> {
    const concurrency = this.o.concurrency ?? 4;
    while (this.running) {
      if (this.active.size >= concurrency) {
        await Promise.race(this.active);
        continue;
      }
      let job: JobRecord | undefined;
      try {
        job = await this.o.store.claim(this.o.instanceId, this.o.now(), this.o.leaseMs ?? 30_000);
      } catch (err) {
        this.o.onError?.(err);
      }
      if (job === undefined) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.o.pollMs ?? 250);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
        continue;
      }
      const work = this.execute(job).catch((err: unknown) => this.o.onError?.(err, job.id));
      this.active.add(work);
      void work.finally(() => this.active.delete(work));
    }
  }

  private async execute(job: JobRecord): Promise<void> {
    const leaseMs = this.o.leaseMs ?? 30_000;
    const renewal = setInterval(
      () => {
        void this.o.store.renew(job.id, this.o.instanceId, this.o.now() + leaseMs).catch((err: unknown) => this.o.onError?.(err, job.id));
      },
      Math.max(50, Math.floor(leaseMs / 3)),
    );
    renewal.unref();
    let outcome: { status: "succeeded" | "failed"; result?: string; error?: string };
    try {
      if (job.attempts > (this.o.maxAttempts ?? 3)) {
        outcome = {
          status: "failed",
          error: JSON.stringify({ code: "job_abandoned", message: `the job's worker stopped ${job.attempts - 1} times before finishing it`, status: 500 }),
        };
      } else {
        const call = JSON.parse(open(this.o.masterKey, JSON.parse(job.sealedCall) as SealedEnvelope, `job:${job.id}`).toString("utf8")) as AcceptedCall;
        try {
          // The whole road again: a revoked token, a suspended agent or a changed policy refuses it here.
          const out = await this.o.road.runAccepted(call, job.correlationId, "job");
          outcome = { status: "succeeded", result: JSON.stringify(out) };
        } catch (err) {
          const e = isGatewayError(err) ? err : new GatewayError("internal_error", "the job failed inside the gateway");
          outcome = { status: "failed", error: JSON.stringify({ code: e.code, message: e.message, status: e.status }) };
        }
      }
    } finally {
      clearInterval(renewal);
    }
    const finished = await this.o.store.finish(job.id, this.o.instanceId, { ...outcome, at: this.o.now() });
    if (finished && job.callbackUrl !== null && this.o.callbacks) {
      void this.o.callbacks.send(job.callbackUrl, job.id, await this.get(job.id));
    }
  }
}
