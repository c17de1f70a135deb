import { describe, expect, it } from "vitest";
import type { JobStore } from "../../src/jobs/job-store.js";

/** Every method of the job store; the compiler refuses a list that misses one. */
export const JOB_STORE_METHODS = ["insert", "get", "claim", "renew", "finish", "counts", "prune"] as const;
const exhaustive: [Exclude<keyof JobStore, (typeof JOB_STORE_METHODS)[number]>] extends [never] ? true : false = true;

/** The durable job queue's contract, for every SQL backend. `open` gives a fresh, migrated queue and how to close it. */
export function jobStoreContract(name: string, open: () => Promise<{ jobs: JobStore; close: () => Promise<void> }>) {
  describe(`job store contract: ${name}`, () => {
    const called = new Set<string>();
    const opened = async () => {
      const { jobs, close } = await open();
      const recorded = new Proxy(jobs, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== "function") return value;
          called.add(String(prop));
          return value.bind(target);
        },
      });
      return { jobs: recorded, close };
    };
    const job = (id: string, createdAt: number) => ({
      id,
      agentId: "a1",
      tool: "serpapi",
      action: "search",
      sealedCall: `sealed-${id}`,
      correlationId: `c-${id}`,
      callbackUrl: null,
      createdAt,
    });

    it("queues, claims the oldest first with a lease, and finishes only for the lease holder", async () => {
      const { jobs, close } = await opened();
      try {
        await jobs.insert(job("j2", 20));
        await jobs.insert(job("j1", 10));
        expect(await jobs.get("j1")).toMatchObject({ status: "queued", attempts: 0, startedAt: null, leaseOwner: null, sealedCall: "sealed-j1" });
        expect(await jobs.get("missing")).toBeUndefined();
        const first = await jobs.claim("w1", 100, 50);
        expect(first).toMatchObject({ id: "j1", status: "running", leaseOwner: "w1", leaseUntil: 150, attempts: 1, startedAt: 100 });
        expect(await jobs.renew("j1", "w1", 300)).toBe(true);
        expect(await jobs.renew("j1", "w2", 400)).toBe(false);
        expect(await jobs.finish("j1", "w2", { status: "succeeded", result: "{}", at: 110 })).toBe(false);
        expect(await jobs.finish("j1", "w1", { status: "succeeded", result: '{"ok":true}', at: 120 })).toBe(true);
        expect(await jobs.get("j1")).toMatchObject({ status: "succeeded", result: '{"ok":true}', finishedAt: 120, leaseOwner: null });
        expect(await jobs.finish("j1", "w1", { status: "failed", error: "{}", at: 130 })).toBe(false);
        expect(await jobs.renew("j1", "w1", 500)).toBe(false);
        expect(await jobs.counts()).toEqual({ queued: 1, running: 0, succeeded: 1, failed: 0 });
      } finally {
        await close();
      }
    });

    it("gives a job whose lease ran out to another worker, and the first one can no longer finish it", async () => {
      const { jobs, close } = await opened();
      try {
        await jobs.insert(job("j", 1));
        await jobs.claim("dead", 100, 50);
        expect(await jobs.claim("w2", 149, 50)).toBeUndefined(); // lease still held
        const taken = await jobs.claim("w2", 151, 50);
        expect(taken).toMatchObject({ id: "j", leaseOwner: "w2", attempts: 2, startedAt: 100 });
        expect(await jobs.finish("j", "dead", { status: "succeeded", at: 160 })).toBe(false);
        expect(await jobs.finish("j", "w2", { status: "failed", error: '{"code":"x"}', at: 170 })).toBe(true);
        expect(await jobs.get("j")).toMatchObject({ status: "failed", error: '{"code":"x"}' });
      } finally {
        await close();
      }
    });

    it("hands each job to exactly one of many concurrent claimers", async () => {
      const { jobs, close } = await opened();
      try {
        for (let i = 0; i < 5; i++) await jobs.insert(job(`j${i}`, i));
        const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => jobs.claim(`w${i}`, 100, 1000)));
        const ids = claims.filter((c) => c !== undefined).map((c) => c.id);
        expect(ids.sort()).toEqual(["j0", "j1", "j2", "j3", "j4"]);
      } finally {
        await close();
      }
    });

    it("prunes finished jobs older than the horizon, never queued or running ones", async () => {
      const { jobs, close } = await opened();
      try {
        const created = { old: 1, new: 2, running: 3, queued: 10 };
        for (const [id, at] of Object.entries(created)) await jobs.insert(job(id, at));
        for (const _oldest of ["old", "new"]) {
          const c = await jobs.claim("w", 0, 10_000);
          await jobs.finish(c!.id, "w", { status: "succeeded", at: c!.id === "old" ? 100 : 900 });
        }
        await jobs.claim("w", 0, 10_000);
        // Claims go oldest first: "old", "new", then "running" were taken; "queued" was not.
        expect(await jobs.prune(500)).toBe(1);
        expect(await jobs.get("old")).toBeUndefined();
        expect(await jobs.counts()).toEqual({ queued: 1, running: 1, succeeded: 1, failed: 0 });
      } finally {
        await close();
      }
    });

    it("exercises every method (no skips)", () => {
      expect(exhaustive).toBe(true);
      expect(JOB_STORE_METHODS.filter((m) => !called.has(m))).toEqual([]);
    });
  });
}
