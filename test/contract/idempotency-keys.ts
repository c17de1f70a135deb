import { afterEach, describe, expect, it } from "vitest";
import type { IdempotencyKeys } from "../../src/resilience/idempotency.js";

/** Every method of the port, so the meta-check below fails when one is added without a test. */
export const IDEMPOTENCY_METHODS = ["claim", "complete", "release", "close"] as const;

/**
 * The contract every Idempotency-Key backend keeps (memory, Redis, SQL on SQLite and PostgreSQL).
 * `make` builds a fresh, empty backend with ttlMs 1000 and inFlightTtlMs 500; `now` is passed in.
 */
export function idempotencyKeysContract(name: string, make: () => Promise<IdempotencyKeys<string>>) {
  describe(`idempotency keys contract: ${name}`, () => {
    const opened: IdempotencyKeys<string>[] = [];
    const open = async () => {
      const keys = await make();
      opened.push(keys);
      return keys;
    };
    afterEach(async () => {
      for (const k of opened.splice(0)) await k.close();
    });

    it("implements every method of the port", async () => {
      const keys = await open();
      for (const m of IDEMPOTENCY_METHODS) expect(typeof keys[m]).toBe("function");
    });

    it("claims a new key once: a second claim sees it in flight, then the stored result", async () => {
      const keys = await open();
      const first = await keys.claim("k", "fp", 0);
      expect(first.state).toBe("claimed");
      expect(await keys.claim("k", "fp", 1)).toEqual({ state: "in_flight" });
      await keys.complete("k", (first as { lease: string }).lease, "message-1", 2);
      expect(await keys.claim("k", "fp", 3)).toEqual({ state: "done", result: "message-1" });
    });

    it("refuses the same key with different parameters, in flight and done", async () => {
      const keys = await open();
      const first = await keys.claim("k", "fp1", 0);
      expect(await keys.claim("k", "fp2", 1)).toEqual({ state: "conflict" });
      await keys.complete("k", (first as { lease: string }).lease, "r", 2);
      expect(await keys.claim("k", "fp2", 3)).toEqual({ state: "conflict" });
    });

    it("a released key (the first call failed) can be claimed again", async () => {
      const keys = await open();
      const first = await keys.claim("k", "fp", 0);
      await keys.release("k", (first as { lease: string }).lease);
      expect((await keys.claim("k", "fp", 1)).state).toBe("claimed");
    });

    it("only the lease holder completes or releases", async () => {
      const keys = await open();
      await keys.claim("k", "fp", 0);
      await keys.complete("k", "not-the-lease", "forged", 1);
      await keys.release("k", "not-the-lease");
      expect(await keys.claim("k", "fp", 2)).toEqual({ state: "in_flight" });
    });

    it("of many concurrent claims exactly one wins", async () => {
      const keys = await open();
      const claims = await Promise.all(Array.from({ length: 20 }, () => keys.claim("race", "fp", 0)));
      expect(claims.filter((c) => c.state === "claimed")).toHaveLength(1);
      expect(claims.filter((c) => c.state === "in_flight")).toHaveLength(19);
    });

    it("keys are independent", async () => {
      const keys = await open();
      expect((await keys.claim("a", "fp", 0)).state).toBe("claimed");
      expect((await keys.claim("b", "fp", 0)).state).toBe("claimed");
    });
  });
}

/**
 * Expiry, for backends whose clock is the `now` passed in (memory, SQL). Redis keeps time itself
 * (PX), so its expiry is exercised by the cross-instance test instead of a clock.
 */
export function idempotencyExpiryContract(name: string, make: () => Promise<IdempotencyKeys<string>>) {
  describe(`idempotency keys expiry: ${name}`, () => {
    it("an unfinished claim expires after inFlightTtlMs, a result after ttlMs", async () => {
      const keys = await make();
      try {
        const first = await keys.claim("k", "fp", 0);
        expect(first.state).toBe("claimed");
        const again = await keys.claim("k", "fp", 500);
        expect(again.state).toBe("claimed");
        // The expired holder can no longer complete over the new claim.
        await keys.complete("k", (first as { lease: string }).lease, "late", 501);
        expect(await keys.claim("k", "fp", 502)).toEqual({ state: "in_flight" });
        await keys.complete("k", (again as { lease: string }).lease, "r", 600);
        expect(await keys.claim("k", "other", 1599)).toEqual({ state: "conflict" });
        expect((await keys.claim("k", "other", 1600)).state).toBe("claimed");
      } finally {
        await keys.close();
      }
    });
  });
}
