import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/util/canonical-json.js";

describe("canonicalJson", () => {
  it("sorts keys at every level and writes JSON that parses back to the same value", () => {
    const value = { b: [3, { z: 1, a: 'x"y' }, null], a: { d: true, c: -1.5 }, é: "ü" };
    const text = canonicalJson(value);
    expect(text).toBe('{"a":{"c":-1.5,"d":true},"b":[3,{"a":"x\\"y","z":1},null],"é":"ü"}');
    expect(JSON.parse(text)).toEqual(value);
    expect(canonicalJson({ é: "ü", a: { c: -1.5, d: true }, b: [3, { a: 'x"y', z: 1 }, null] })).toBe(text);
  });

  it("writes undefined and functions as null, like the fingerprints always have", () => {
    expect(canonicalJson({ a: undefined, b: [undefined, () => 1] })).toBe('{"a":null,"b":[null,null]}');
    expect(canonicalJson(undefined)).toBe("null");
  });

  it("handles nesting far deeper than the call stack allows, with the same text as the fast path would", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = i % 2 === 0 ? [deep] : { k: deep };
    const text = canonicalJson(deep);
    expect(text.length).toBeGreaterThan(20_000 * 2);
    expect(text.startsWith('{"k":[{"k":[')).toBe(true);
    let shallow: unknown = 1;
    for (let i = 0; i < 64; i++) shallow = i % 2 === 0 ? [shallow] : { k: shallow };
    let deeper: unknown = shallow;
    for (let i = 0; i < 2; i++) deeper = { k: [deeper] };
    expect(canonicalJson(deeper)).toBe(`{"k":[{"k":[${canonicalJson(shallow)}]}]}`);
  });
});

describe("audit record links keep their canonical text", () => {
  it("recordHash is the HMAC of prevHash and the sorted non-null fields, whatever the key order", async () => {
    const { createHmac } = await import("node:crypto");
    const { recordHash } = await import("../../src/audit/chain.js");
    const key = Buffer.alloc(32, 7);
    const record = {
      id: "r1",
      at: 5,
      correlationId: "c",
      agentId: null,
      tool: "serpapi",
      action: "search",
      decision: "allow",
      reason: null,
      status: 200,
      latencyMs: 1.5,
      upstreamMs: undefined,
      cache: "miss",
      attempts: 1,
      paramsHash: "p",
      door: "rest",
      chainId: "ch",
      chainSeq: 3,
      prevHash: "prev",
      hash: "ignored",
      usage: { totalTokens: 3, promptTokens: 1, completionTokens: 2 },
    };
    const fields = Object.fromEntries(Object.entries(record).filter(([k, v]) => k !== "hash" && k !== "prevHash" && v !== null && v !== undefined));
    const expected = createHmac("sha256", key)
      .update(`prev|${canonicalJson(fields)}`)
      .digest("base64url");
    expect(recordHash(key, record as never)).toBe(expected);
    const reordered = Object.fromEntries(Object.entries(record).reverse());
    expect(recordHash(key, reordered as never)).toBe(expected);
    expect(recordHash(key, { ...record, status: 500 } as never)).not.toBe(expected);
  });
});
