import { describe, expect, it } from "vitest";
import { timeOrderedUuid } from "../../src/util/time-ordered-id.js";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("time-ordered ids (UUID version 7)", () => {
  it("are RFC 9562 version 7 UUIDs whose first 48 bits are the Unix time in milliseconds", () => {
    const at = Date.UTC(2026, 10, 30, 23, 59, 59, 123);
    const id = timeOrderedUuid(at);
    expect(id).toMatch(V7);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(at);
  });

  it("sort in time order across milliseconds, as a B-tree index on them grows", () => {
    const ids = [0, 1, 255, 256, 65_535, 65_536, 1_700_000_000_000, 1_800_000_000_000].map((ms) => timeOrderedUuid(ms));
    expect([...ids].sort()).toEqual(ids);
  });

  it("never repeat, and keep 74 random bits (the pool is refilled as it runs out)", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200_000; i++) ids.add(timeOrderedUuid(1_764_547_200_000));
    expect(ids.size).toBe(200_000);
    const all = [...ids];
    expect(all.every((id) => V7.test(id))).toBe(true);
    // Every hex digit of the random tail occurs: no constant or stuck byte.
    for (let pos = 24; pos < 36; pos++) expect(new Set(all.slice(0, 2000).map((id) => id[pos])).size).toBe(16);
  });
});
