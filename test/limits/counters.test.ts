import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryCounters, type Counters } from "../../src/limits/counters.js";
import { RedisCounters } from "../../src/limits/redis-counters.js";
import type { LimitCheck } from "../../src/policy/types.js";
import { redisAvailable, REDIS_URL } from "../helpers/services.js";

const ref = { policyId: "p", policyName: "p", version: 1, rule: 0 };
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const quota = (key: string, limit: number, windowEndMs = T0 + 60_000, countFailures = false): LimitCheck => ({
  kind: "quota",
  key,
  ref,
  limit,
  windowEndMs,
  countFailures,
});
const rate = (key: string, perSecond: number, burst: number): LimitCheck => ({ kind: "rate", key, ref, limit: burst, perSecond });

/** One contract, run against every backend. */
function contract(name: string, make: () => Promise<Counters>) {
  describe(`counters contract: ${name}`, () => {
    let c: Counters;
    let k: (s: string) => string;
    beforeAll(async () => {
      c = await make();
    });
    afterAll(async () => c.close());
    let run = 0;
    const fresh = () => {
      const id = `${Date.now()}-${++run}-${randomBytes(3).toString("hex")}`;
      k = (s) => `${s}:${id}`;
    };

    it("a quota allows exactly its limit in a window, then says when it resets", async () => {
      fresh();
      const q = quota(k("q"), 3);
      for (let i = 0; i < 3; i++) expect(await c.consume([q], T0 + i)).toEqual({ ok: true });
      expect(await c.consume([q], T0 + 10)).toEqual({ ok: false, index: 0, retryAfterSeconds: 60 });
      expect(await c.peek([q], T0 + 10)).toEqual([0]);
    });

    it("a token budget lets calls in while tokens are left, counts what each used afterwards, and is never refunded", async () => {
      fresh();
      const budget: LimitCheck = { ...quota(k("tok"), 100), unit: "tokens" };
      const calls = quota(k("tok-calls"), 10);
      // Admission takes nothing from the budget (the tokens are not known yet), but the call quota beside it counts.
      expect(await c.consume([budget, calls], T0)).toEqual({ ok: true });
      expect(await c.peek([budget, calls], T0)).toEqual([100, 9]);
      await c.addUsage([budget, calls], 60, T0 + 1);
      expect(await c.peek([budget, calls], T0 + 1)).toEqual([40, 9]); // only the budget counts tokens
      expect((await c.consume([budget], T0 + 2)).ok).toBe(true);
      await c.addUsage([budget], 55, T0 + 3); // the last call may overshoot by its own size
      await c.refund([budget], T0 + 4); // a failed call gives nothing back: it took nothing
      expect(await c.peek([budget], T0 + 4)).toEqual([-15]);
      expect(await c.consume([budget], T0 + 5)).toEqual({ ok: false, index: 0, retryAfterSeconds: 60 });
      // Usage for a budget whose window has no count yet starts it.
      const fresh2: LimitCheck = { ...quota(k("tok2"), 10), unit: "tokens" };
      await c.addUsage([fresh2], 12, T0);
      expect((await c.consume([fresh2], T0 + 1)).ok).toBe(false);
    });

    it("a new window (a new key) starts from zero", async () => {
      fresh();
      const first = quota(k("w1"), 1);
      expect((await c.consume([first], T0)).ok).toBe(true);
      expect((await c.consume([first], T0)).ok).toBe(false);
      expect((await c.consume([quota(k("w2"), 1, T0 + 120_000)], T0 + 60_000)).ok).toBe(true);
    });

    it("a token bucket allows the burst, then refills at its rate", async () => {
      fresh();
      const r = rate(k("r"), 2, 4);
      for (let i = 0; i < 4; i++) expect((await c.consume([r], T0)).ok).toBe(true);
      const refused = await c.consume([r], T0);
      expect(refused).toEqual({ ok: false, index: 0, retryAfterSeconds: 1 });
      expect((await c.consume([r], T0 + 499)).ok).toBe(false);
      expect((await c.consume([r], T0 + 500)).ok).toBe(true); // one token after 0.5 s at 2/s
      expect((await c.consume([r], T0 + 500)).ok).toBe(false);
      expect(await c.peek([r], T0 + 10_000)).toEqual([4]); // capped at the burst
    });

    it("is all-or-nothing: a call refused by one limit takes nothing from the others", async () => {
      fresh();
      const q = quota(k("aon-q"), 10);
      const full = quota(k("aon-full"), 1);
      expect((await c.consume([full], T0)).ok).toBe(true);
      expect(await c.consume([q, full], T0)).toEqual({ ok: false, index: 1, retryAfterSeconds: 60 });
      expect(await c.peek([q], T0)).toEqual([10]);
    });

    it("refund gives a quota unit back, never below zero", async () => {
      fresh();
      const q = quota(k("refund"), 2);
      await c.consume([q], T0);
      await c.refund([q], T0);
      await c.refund([q], T0);
      expect(await c.peek([q], T0)).toEqual([2]);
    });

    it("concurrent calls never exceed the limit", async () => {
      fresh();
      const q = quota(k("race"), 25);
      const results = await Promise.all(Array.from({ length: 100 }, () => c.consume([q], T0)));
      expect(results.filter((r) => r.ok)).toHaveLength(25);
    });
  });
}

contract("in-process", async () => new MemoryCounters());

const redisUp = await redisAvailable();
describe.skipIf(!redisUp)("Redis backend", () => {
  contract("Redis", async () => {
    const c = new RedisCounters(REDIS_URL, `test:${process.pid}:${Date.now()}:`);
    await c.ready();
    return c;
  });

  it("two clients (two gateway instances) share one quota exactly", async () => {
    const prefix = `test:shared:${process.pid}:${Date.now()}:`;
    const a = new RedisCounters(REDIS_URL, prefix);
    const b = new RedisCounters(REDIS_URL, prefix);
    await Promise.all([a.ready(), b.ready()]);
    try {
      const q = quota("shared-q", 40);
      const results = await Promise.all(Array.from({ length: 120 }, (_, i) => (i % 2 === 0 ? a : b).consume([q], T0)));
      expect(results.filter((r) => r.ok)).toHaveLength(40);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("in-process counters: memory", () => {
  it("forgets buckets once they have refilled, so keys chosen by callers do not pile up", async () => {
    const c = new MemoryCounters(100);
    const busy = rate("busy", 1, 2);
    await c.consume([busy], T0);
    await c.consume([busy], T0); // empty: full again only at T0 + 2 s
    for (let i = 0; i < 100; i++) expect((await c.consume([rate(`probe-${i}`, 1, 5)], T0)).ok).toBe(true);
    expect(c.size()).toBe(101);
    // Each probe took one of five tokens at 1/s: full again at T0 + 1 s, so the next insert sweeps them.
    await c.consume([rate("late", 1, 5)], T0 + 1000);
    expect(c.size()).toBe(2);
    // The bucket still refilling kept what it knew (a fresh one would have 2 tokens).
    expect(await c.peek([busy], T0 + 1000)).toEqual([1]);
  });
});
