import { describe, expect, it } from "vitest";
import { evaluate } from "../../src/policy/evaluate.js";
import { compileGuardPattern, MAX_PATTERN_INPUT_CHARS } from "../../src/policy/guards.js";
import { parsePolicy, policyHash } from "../../src/policy/schema.js";
import type { Policy, PolicyDocument } from "../../src/policy/types.js";

let n = 0;
const policy = (doc: PolicyDocument): Policy => {
  const document = parsePolicy(doc);
  return { id: `h${++n}`, version: 1, hash: policyHash(document), document };
};
const grantAll = policy({ name: "grant", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
const decide = (policies: Policy[], tool: string, action: string, params: Record<string, unknown>) =>
  evaluate({ agent: { id: "a1", role: "r" }, token: { scopes: ["*"] }, policies, now: Date.UTC(2026, 10, 24, 12), call: { tool, action, params } });
const outcome = (d: ReturnType<typeof decide>) => (d.allow ? "allow" : d.reason);

describe("host guards compare normalised host names (trailing dot, IDNA, case)", () => {
  const denyEvil = policy({
    name: "deny-evil",
    subject: { all: true },
    rules: [{ effect: "deny", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["evil.test", "*.evil.test"] } } }],
  });
  const notOneOfEvil = policy({
    name: "not-evil",
    subject: { all: true },
    rules: [{ effect: "allow", scopes: ["http_fetch:*"], guards: { "url.host": { notOneOf: ["EVIL.test.", "*.evil.test"] } } }],
  });
  const onlyBuecher = policy({
    name: "only-buecher",
    subject: { all: true },
    rules: [{ effect: "allow", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["Bücher.example."] } } }],
  });

  it.each(["http://evil.test./", "http://evil.test%2E/", "http://a.evil.test./", "http://A.EVIL.TEST/", "http://a.evil.test%2e/x"])(
    "a deny rule and notOneOf both catch %s",
    (url) => {
      expect(outcome(decide([grantAll, denyEvil], "http_fetch", "get", { url }))).toBe("scope_denied");
      expect(outcome(decide([grantAll, notOneOfEvil], "http_fetch", "get", { url }))).toBe("guard_failed");
    },
  );

  it("an ordinary host still passes, and a Unicode entry matches its punycode form", () => {
    expect(outcome(decide([grantAll, denyEvil, notOneOfEvil], "http_fetch", "get", { url: "http://good.test./" }))).toBe("allow");
    expect(outcome(decide([grantAll, onlyBuecher], "http_fetch", "get", { url: "http://xn--bcher-kva.example/" }))).toBe("allow");
    expect(outcome(decide([grantAll, onlyBuecher], "http_fetch", "get", { url: "http://BÜCHER.example./" }))).toBe("allow");
    expect(outcome(decide([grantAll, onlyBuecher], "http_fetch", "get", { url: "http://buecher.example/" }))).toBe("guard_failed");
  });

  it("only one trailing dot is stripped: two dots is not the same host", () => {
    expect(outcome(decide([grantAll, notOneOfEvil], "http_fetch", "get", { url: "http://evil.test%2e%2e/" }))).toBe("allow");
  });

  it("recipient domains and addresses are normalised the same way", () => {
    const denyDomain = policy({
      name: "no-rival",
      subject: { all: true },
      rules: [{ effect: "deny", scopes: ["gmail_send:*"], guards: { "recipients.domain": { oneOf: ["rival.example"] } } }],
    });
    const notAddress = policy({
      name: "not-boss",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["gmail_send:*"], guards: { recipients: { notOneOf: ["boss@corp.example"] } } }],
    });
    expect(outcome(decide([grantAll, denyDomain], "gmail_send", "send", { to: ["a@corp.example", "spy@Rival.Example."] }))).toBe("scope_denied");
    expect(outcome(decide([grantAll, notAddress], "gmail_send", "send", { to: "boss@CORP.example." }))).toBe("guard_failed");
    expect(outcome(decide([grantAll, denyDomain, notAddress], "gmail_send", "send", { to: "a@corp.example" }))).toBe("allow");
  });
});

describe("url.path is compared as servers read it", () => {
  const denyAdmin = policy({
    name: "deny-admin",
    subject: { all: true },
    rules: [{ effect: "deny", scopes: ["http_fetch:*"], guards: { "url.path": { oneOf: ["/admin"] } } }],
  });
  it.each(["http://ok.example/admin", "http://ok.example/%61dmin", "http://ok.example/adm%69n", "http://ok.example/x/%2e%2e/admin", "http://ok.example/ADMIN"])(
    "%s is /admin",
    (url) => {
      expect(outcome(decide([grantAll, denyAdmin], "http_fetch", "get", { url }))).toBe("scope_denied");
    },
  );
  it("an encoded slash stays encoded (it is not a path separator to most servers)", () => {
    expect(outcome(decide([grantAll, denyAdmin], "http_fetch", "get", { url: "http://ok.example/%2Fadmin" }))).toBe("allow");
  });
});

describe("a deny rule's guard on an array matches when any item matches", () => {
  const denyRival = policy({
    name: "deny-rival",
    subject: { all: true },
    rules: [{ effect: "deny", scopes: ["gmail_send:*"], guards: { "recipients.domain": { oneOf: ["rival.example"] } } }],
  });

  it("one rival recipient hidden among colleagues is still denied", () => {
    expect(outcome(decide([grantAll, denyRival], "gmail_send", "send", { to: ["a@corp.example", "b@corp.example"], bcc: "spy@rival.example" }))).toBe(
      "scope_denied",
    );
    expect(outcome(decide([grantAll, denyRival], "gmail_send", "send", { to: ["a@corp.example", "b@corp.example"] }))).toBe("allow");
  });

  it("an allow rule's guard still needs every item to pass", () => {
    const onlyCorp = policy({
      name: "only-corp",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["gmail_send:*"], guards: { "recipients.domain": { oneOf: ["corp.example"] } } }],
    });
    expect(outcome(decide([grantAll, onlyCorp], "gmail_send", "send", { to: ["a@corp.example", "x@rival.example"] }))).toBe("guard_failed");
  });
});

describe("guard paths read the parameters' own properties only", () => {
  it.each(["constructor", "__proto__", "toString", "hasOwnProperty", "q.constructor", "q.length"])("a guard on %s sees a missing value", (path) => {
    const required = policy({ name: `own-${n}`, subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], guards: { [path]: { maxLength: 1000 } } }] });
    // Were inherited properties read, `constructor` (a function) or `q.length` (a number) would be "present".
    const d = decide([grantAll, required], "serpapi", "search", { q: "x" });
    expect(outcome(d)).toBe("guard_failed");
    expect(d.allow ? "" : d.message).toContain("is required by policy");
  });

  it("an own property with an inherited name is still read", () => {
    const p = policy({ name: `own-${n}`, subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], guards: { constructor: { equals: "x" } } }] });
    expect(outcome(decide([grantAll, p], "serpapi", "search", JSON.parse('{"constructor":"x"}') as Record<string, unknown>))).toBe("allow");
  });
});

describe("pattern guards run on a linear-time engine", () => {
  it("the classic catastrophic pattern ^(a+)+$ is decided at once on a long hostile input", () => {
    // With backtracking (JS RegExp) 30 a's and a bang already take seconds, 4000 never finish:
    // this test would time out, not pass.
    const p = policy({ name: "redos", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], guards: { q: { pattern: "^(a+)+$" } } }] });
    expect(outcome(decide([grantAll, p], "serpapi", "search", { q: `${"a".repeat(MAX_PATTERN_INPUT_CHARS - 1)}!` }))).toBe("guard_failed");
    expect(outcome(decide([grantAll, p], "serpapi", "search", { q: "a".repeat(MAX_PATTERN_INPUT_CHARS) }))).toBe("allow");
  });

  it("a value longer than the pattern input bound fails an allow rule's pattern and trips a deny rule's", () => {
    const huge = "a".repeat(MAX_PATTERN_INPUT_CHARS + 1);
    const allowOnlyA = policy({ name: "only-a", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], guards: { q: { pattern: "^a+$" } } }] });
    const denyB = policy({ name: "deny-b", subject: { all: true }, rules: [{ effect: "deny", scopes: ["*"], guards: { q: { pattern: "b" } } }] });
    expect(outcome(decide([grantAll, allowOnlyA], "serpapi", "search", { q: huge }))).toBe("guard_failed");
    expect(outcome(decide([grantAll, denyB], "serpapi", "search", { q: huge }))).toBe("scope_denied");
    expect(outcome(decide([grantAll, allowOnlyA, denyB], "serpapi", "search", { q: "a".repeat(MAX_PATTERN_INPUT_CHARS) }))).toBe("allow");
  });

  it("a pattern stored before RE2 that RE2 cannot run fails closed instead of failing the call (500)", () => {
    // Stored documents are not parsed again on load, so build the policies as the store hands them over.
    const stored = (name: string, effect: "allow" | "deny"): Policy => ({
      id: name,
      version: 1,
      hash: "h",
      document: { name, subject: { all: true }, rules: [{ effect, scopes: ["*"], guards: { q: { pattern: "^(?=a)a+$" } } }] },
    });
    const allowD = decide([grantAll, stored("legacy-allow", "allow")], "serpapi", "search", { q: "aaa" });
    expect(outcome(allowD)).toBe("guard_failed");
    expect(allowD.allow ? "" : allowD.message).toContain("not one RE2 can run");
    expect(outcome(decide([grantAll, stored("legacy-deny", "deny")], "serpapi", "search", { q: "zzz" }))).toBe("scope_denied");
  });

  it("evaluation uses the RE2 engine, not JS RegExp", () => {
    expect(compileGuardPattern("^(a+)+$")).not.toBeInstanceOf(RegExp);
    expect(compileGuardPattern("^[a-z]+$").constructor.name).toBe("RE2JS");
  });

  it.each([
    ["(a)\\1", "backreference"],
    ["(?=a)b", "lookahead"],
    ["(?<!a)b", "lookbehind"],
    ["(.*){1000}", "over the repeat limit"],
    ["[a-z]{900}", "a program too large to match cheaply"],
  ])("a pattern RE2 cannot run in linear time (%s, %s) is refused at load, naming the field", (pattern) => {
    expect(() => parsePolicy({ name: "x", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], guards: { q: { pattern } } }] })).toThrow(
      /rules\[0\]\.guards\.q\.pattern/,
    );
  });
});

describe("policy binds which intents an agent may claim", () => {
  const withIntent = (policies: Policy[], intent: string | undefined) =>
    evaluate({
      agent: { id: "a1", role: "r" },
      token: { scopes: ["*"], intent },
      policies,
      now: Date.UTC(2026, 10, 24, 12),
      call: { tool: "openai", action: "chat", params: {} },
    });
  // The rule an agent would like to satisfy by naming the intent itself.
  const billingOnly = policy({
    name: "billing-chat",
    subject: { all: true },
    rules: [
      { effect: "allow", scopes: ["*"] },
      { effect: "allow", scopes: ["openai:*"], intents: ["billing"] },
    ],
  });
  const researcherIntents = policy({
    name: "researcher-intents",
    subject: { role: "r" },
    claimableIntents: ["research"],
    rules: [{ effect: "allow", scopes: ["serpapi:*"] }],
  });

  it("without claimableIntents any intent the token names counts (intents rules are not a boundary)", () => {
    expect(outcome(withIntent([billingOnly], "billing"))).toBe("allow");
  });

  it("with claimableIntents, an intent the policy does not list is refused, whatever the token says", () => {
    const d = withIntent([billingOnly, researcherIntents], "billing");
    expect(outcome(d)).toBe("intent_required");
    expect(d.allow ? "" : d.message).toContain('claim the intent "billing"');
    expect(outcome(withIntent([billingOnly, researcherIntents], "research"))).toBe("intent_required"); // claimable, but the rule wants billing
  });

  it("a disabled policy binds nothing, and every applicable policy that lists intents must list the token's", () => {
    const disabled = policy({ ...researcherIntents.document, name: "disabled-intents", enabled: false });
    expect(outcome(withIntent([billingOnly, disabled], "billing"))).toBe("allow");
    const both = policy({
      name: "both",
      subject: { all: true },
      claimableIntents: ["billing", "research"],
      rules: [{ effect: "allow", scopes: ["serpapi:*"] }],
    });
    expect(outcome(withIntent([billingOnly, both], "billing"))).toBe("allow");
    expect(outcome(withIntent([billingOnly, both, researcherIntents], "billing"))).toBe("intent_required");
  });

  it("the field is validated", () => {
    expect(() => parsePolicy({ name: "x", subject: { all: true }, claimableIntents: [""], rules: [{ effect: "allow", scopes: ["*"] }] })).toThrow(
      /claimableIntents/,
    );
  });
});
