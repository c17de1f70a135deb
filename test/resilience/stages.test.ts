import { describe, expect, it } from "vitest";
import { backoffDelayMs, RetryBudget } from "../../src/resilience/backoff.js";
import { CircuitBreaker, type BreakerState } from "../../src/resilience/breaker.js";
import { ChaosController, parseChaosEnv, parseChaosSettings } from "../../src/resilience/chaos.js";
import { cacheKey, ResponseCache, SingleFlight } from "../../src/resilience/response-cache.js";

describe("circuit breaker state machine", () => {
  const options = { windowMs: 10_000, minCalls: 4, failureRate: 0.5, coolDownMs: 5_000, halfOpenProbes: 2 };
  const make = () => {
    const transitions: string[] = [];
    const b = new CircuitBreaker(options, (from: BreakerState, to: BreakerState) => transitions.push(`${from}>${to}`));
    return { b, transitions };
  };

  it("stays closed below the minimum number of calls, whatever the failure rate", () => {
    const { b } = make();
    for (let i = 0; i < 3; i++) b.record(1000, true, false);
    expect(b.current(1000)).toBe("closed");
  });

  it("opens when the failure rate reaches the threshold, and fast-fails with a retry time", () => {
    const { b, transitions } = make();
    b.record(1000, false, false);
    b.record(1000, false, false);
    b.record(1000, true, false);
    expect(b.current(1000)).toBe("closed"); // 1/3
    b.record(1001, true, false); // 2/4 = 50 %
    expect(b.current(1001)).toBe("open");
    expect(b.admit(2001)).toEqual({ allowed: false, retryAfterMs: 4000 });
    expect(transitions).toEqual(["closed>open"]);
  });

  it("forgets failures older than the window", () => {
    const { b } = make();
    b.record(0, true, false);
    b.record(0, true, false);
    b.record(0, true, false);
    b.record(11_000, false, false);
    expect(b.current(11_000)).toBe("closed");
    expect(b.stats(11_000)).toMatchObject({ calls: 1, failures: 0 });
  });

  it("goes half-open after the cool-down, lets a bounded number of probes through, and closes when they succeed", () => {
    const { b, transitions } = make();
    for (let i = 0; i < 4; i++) b.record(0, true, false);
    expect(b.admit(4_999).allowed).toBe(false);
    expect(b.admit(5_000)).toEqual({ allowed: true, probe: true });
    expect(b.admit(5_000)).toEqual({ allowed: true, probe: true });
    expect(b.admit(5_000).allowed).toBe(false); // probe slots full
    b.record(5_010, false, true);
    expect(b.current(5_010)).toBe("half_open");
    b.record(5_020, false, true);
    expect(b.current(5_020)).toBe("closed");
    expect(transitions).toEqual(["closed>open", "open>half_open", "half_open>closed"]);
  });

  it("opens again when a probe fails", () => {
    const { b } = make();
    for (let i = 0; i < 4; i++) b.record(0, true, false);
    const a = b.admit(6_000);
    expect(a).toMatchObject({ probe: true });
    b.record(6_001, true, true);
    expect(b.current(6_001)).toBe("open");
    expect(b.admit(6_002)).toEqual({ allowed: false, retryAfterMs: 4_999 });
  });

  it("a probe that ended without an upstream verdict frees its slot", () => {
    const { b } = make();
    for (let i = 0; i < 4; i++) b.record(0, true, false);
    b.admit(5_000);
    b.admit(5_000);
    b.release(true);
    expect(b.admit(5_000).allowed).toBe(true);
  });
});

describe("backoff and retry budget", () => {
  it("full jitter: a random delay under an exponentially growing ceiling, capped", () => {
    const o = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5].map((r) => backoffDelayMs(r, o, () => 0.999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelayMs(3, o, () => 0)).toBe(0);
    expect(backoffDelayMs(2, o, () => 0.5)).toBe(100);
  });

  it("retries at most a share of recent requests, with a floor for quiet tools", () => {
    const budget = new RetryBudget({ ratio: 0.2, minRetries: 2, windowMs: 10_000 });
    expect(budget.tryRetry("t", 0)).toBe(true);
    expect(budget.tryRetry("t", 0)).toBe(true);
    expect(budget.tryRetry("t", 0)).toBe(false); // floor of 2 used, no traffic yet
    for (let i = 0; i < 50; i++) budget.request("t", 100);
    let granted = 0;
    while (budget.tryRetry("t", 100)) granted++;
    expect(granted).toBe(8); // 20 % of 50 = 10, 2 already spent
    expect(budget.tryRetry("other", 100)).toBe(true); // per tool
    expect(budget.tryRetry("t", 20_000)).toBe(true); // the window moved on
  });
});

describe("response cache", () => {
  const o = { maxEntries: 3, maxBytes: 100, maxEntryBytes: 60, staleSeconds: 30 };

  it("keys on tool, action, canonical parameters and scope", () => {
    expect(cacheKey("s", "a", { a: 1, b: [1, { c: 2, d: 3 }] }, "r")).toBe(cacheKey("s", "a", { b: [1, { d: 3, c: 2 }], a: 1 }, "r"));
    expect(cacheKey("s", "a", { a: 1 }, "r")).not.toBe(cacheKey("s", "a", { a: 1 }, "other-role"));
    expect(cacheKey("s", "a", { a: 1 }, "r")).not.toBe(cacheKey("s", "b", { a: 1 }, "r"));
    expect(cacheKey("s", "a", { a: "1" }, "r")).not.toBe(cacheKey("s", "a", { a: 1 }, "r"));
  });

  it("expires entries after their TTL, and serves them stale only when asked, within the stale window", () => {
    const c = new ResponseCache<string>(o);
    c.set("k", "v", 10, 60, 0);
    expect(c.get("k", 59_999)).toEqual({ value: "v", fresh: true });
    expect(c.get("k", 60_000)).toBeUndefined();
    expect(c.get("k", 60_000, true)).toEqual({ value: "v", fresh: false });
    expect(c.get("k", 90_000, true)).toBeUndefined();
    expect(c.stats()).toEqual({ entries: 0, bytes: 0 });
  });

  it("evicts the least recently used entry when entries or bytes run over", () => {
    const c = new ResponseCache<string>(o);
    c.set("a", "1", 10, 60, 0);
    c.set("b", "2", 10, 60, 0);
    c.set("c", "3", 10, 60, 0);
    c.get("a", 1); // a is now most recent
    c.set("d", "4", 10, 60, 2);
    expect(c.get("b", 3)).toBeUndefined();
    expect(c.get("a", 3)?.value).toBe("1");
    c.set("big", "x", 60, 60, 4); // bytes: 10+10+10+60 = 90 ≤ 100 would need 4 entries > 3
    expect(c.stats().entries).toBeLessThanOrEqual(3);
    expect(c.stats().bytes).toBeLessThanOrEqual(100);
    expect(c.set("huge", "x", 61, 60, 5)).toBe(false); // over the per-entry cap
  });

  it("single-flight: identical concurrent work runs once", async () => {
    const sf = new SingleFlight<number>();
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const work = async () => {
      calls++;
      await gate;
      return 42;
    };
    const all = Promise.all([sf.run("k", work), sf.run("k", work), sf.run("k", work)]);
    release();
    const results = await all;
    expect(calls).toBe(1);
    expect(results.map((r) => r.value)).toEqual([42, 42, 42]);
    expect(results.filter((r) => r.leader)).toHaveLength(1);
    expect(sf.size).toBe(0);
  });
});

// Idempotency keys: one contract for every backend, in test/contract/idempotency-keys.ts (run by idempotency-keys.test.ts).

describe("chaos settings", () => {
  it("validates probabilities and names the bad field", () => {
    expect(parseChaosSettings({ timeout: 0.3, error500: 0.25, latency: 0.2, latencyMs: 500 })).toEqual({
      timeout: 0.3,
      error500: 0.25,
      latency: 0.2,
      latencyMs: 500,
    });
    expect(() => parseChaosSettings({ timeout: 1.5 })).toThrow("chaos.timeout");
    expect(() => parseChaosSettings({ timeout: 0.6, error500: 0.6 })).toThrow("must not exceed 1");
    expect(() => parseChaosSettings({ explode: 1 })).toThrow("not a chaos setting");
    expect(() => parseChaosEnv("{not json")).toThrow("CHAOS must be JSON");
    expect(parseChaosEnv('{"serpapi":{"error500":1}}')).toEqual({ serpapi: { error500: 1 } });
  });

  it("draws faults with the configured probabilities, per tool or for all", () => {
    const chaos = new ChaosController({ serpapi: { timeout: 0.3, error500: 0.25, latency: 0.2, latencyMs: 700 } });
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const counts = { timeout: 0, error500: 0, reset: 0, latency: 0, none: 0 };
    for (let i = 0; i < 20_000; i++) {
      const f = chaos.draw("serpapi", random);
      if (f.latencyMs > 0) counts.latency++;
      counts[f.failure ?? "none"]++;
    }
    expect(counts.timeout / 20_000).toBeCloseTo(0.3, 1);
    expect(counts.error500 / 20_000).toBeCloseTo(0.25, 1);
    expect(counts.latency / 20_000).toBeCloseTo(0.2, 1);
    expect(chaos.draw("openai", random)).toEqual({ latencyMs: 0 });
    chaos.set("*", { reset: 1 });
    expect(chaos.draw("openai", random).failure).toBe("reset");
    chaos.clear();
    expect(chaos.active()).toBe(false);
  });
});

describe("seeded random source (CHAOS_SEED)", () => {
  it("replays the same sequence for the same seed, stays in [0, 1), and differs across seeds", async () => {
    const { seededRandom } = await import("../../src/resilience/chaos.js");
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Array.from({ length: 10 }, seededRandom(43))).not.toEqual(xs.slice(0, 10));
    // Roughly uniform: a fault rate of 30 % draws close to 30 %.
    const hits = xs.filter((x) => x < 0.3).length;
    expect(hits).toBeGreaterThan(250);
    expect(hits).toBeLessThan(350);
  });
});
