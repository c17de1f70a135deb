import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { compileLinearRegExp, linearRegExpEngine, MAX_REGEXP_PROGRAM_SIZE } from "../../src/util/linear-regexp.js";

describe("the linear (RE2) regular expression engine", () => {
  it("matches like RegExp for ordinary patterns, and refuses what RE2 cannot run or is too large", () => {
    expect(compileLinearRegExp("^[a-z]+\\.example$").test("docs.example")).toBe(true);
    expect(compileLinearRegExp("^[a-z]+\\.example$").test("Docs.example")).toBe(false);
    expect(() => compileLinearRegExp("(a)\\1")).toThrow();
    expect(() => compileLinearRegExp("(?=a)")).toThrow();
    expect(() => compileLinearRegExp(`[a-z]{${MAX_REGEXP_PROGRAM_SIZE}}`)).toThrow(/RE2 instructions/);
  });

  it("as Ajv's engine, each schema keeps its own pattern (Ajv shares patterns by their toString)", () => {
    const ajv = new Ajv({ strict: false, code: { regExp: linearRegExpEngine } });
    const twoLetters = ajv.compile({ type: "string", pattern: "^[a-z]{2}$" });
    const url = ajv.compile({ type: "string", pattern: "^https?://" });
    expect(twoLetters("fr")).toBe(true);
    expect(url("https://example.com/")).toBe(true);
    expect(url("fr")).toBe(false);
    expect(twoLetters("https://example.com/")).toBe(false);
  });

  it("a hostile value against ^(a+)+$ is decided (JavaScript's RegExp would backtrack for ages)", () => {
    const ajv = new Ajv({ strict: false, code: { regExp: linearRegExpEngine } });
    const nested = ajv.compile({ type: "string", pattern: "^(a+)+$" });
    expect(nested(`${"a".repeat(4000)}!`)).toBe(false);
    expect(nested("a".repeat(4000))).toBe(true);
  });
});
