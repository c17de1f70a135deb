import { describe, expect, it } from "vitest";
import { evaluate, type EvaluationInput } from "../../src/policy/evaluate.js";
import { parsePolicy, policyHash } from "../../src/policy/schema.js";
import type { Policy, PolicyDocument } from "../../src/policy/types.js";
import { calendarWindow, inSchedule } from "../../src/policy/windows.js";

/** The example from the policy issue, exactly as written. */
const RESEARCHERS = `{"name": "researchers",
 "subject": {"role": "researcher"},
 "rules": [
   {"effect": "allow", "scopes": ["serpapi:search", "http_fetch:get"]},
   {"effect": "deny",  "scopes": ["gmail_send:*"]},
   {"effect": "allow", "scopes": ["http_fetch:get"], "guards": {"url.host": {"oneOf": ["example.com", "*.example.org"]}}},
   {"effect": "allow", "scopes": ["serpapi:search"], "quota": {"limit": 1000, "per": "day", "timeZone": "UTC"}},
   {"effect": "allow", "scopes": ["*"], "schedule": {"days": ["mon","tue","wed","thu","fri"], "hours": "08:00-18:00", "timeZone": "America/Toronto"}},
   {"effect": "allow", "scopes": ["*"], "rateLimit": {"perSecond": 10, "burst": 20}}
 ]}`;

let n = 0;
const policy = (doc: PolicyDocument | string): Policy => {
  const document = parsePolicy(doc);
  return { id: `p${++n}`, version: 1, hash: policyHash(document), document };
};

// Tuesday 2026-11-24 10:00 in Toronto (UTC-5 in November) = 15:00 UTC.
const TUE_10_TORONTO = Date.UTC(2026, 10, 24, 15, 0);
const researcher = { id: "agent-1", role: "researcher" };
const allScopes = { scopes: ["*:*"] };

function decide(policies: Policy[], call: { tool: string; action: string; params?: Record<string, unknown> }, extra: Partial<EvaluationInput> = {}) {
  return evaluate({ agent: researcher, token: allScopes, policies, now: TUE_10_TORONTO, call: { params: {}, ...call }, ...extra });
}

describe("the issue's example policy means what it reads as", () => {
  const p = policy(RESEARCHERS);

  it.each([
    ["search in office hours", { tool: "serpapi", action: "search", params: { q: "x" } }, "allow"],
    ["fetch from example.com", { tool: "http_fetch", action: "get", params: { url: "https://example.com/a" } }, "allow"],
    ["fetch from a subdomain of example.org", { tool: "http_fetch", action: "get", params: { url: "https://docs.example.org/" } }, "allow"],
    ["fetch from example.org itself (not a subdomain)", { tool: "http_fetch", action: "get", params: { url: "https://example.org/" } }, "guard_failed"],
    ["fetch from elsewhere", { tool: "http_fetch", action: "get", params: { url: "https://evil.test/" } }, "guard_failed"],
    ["fetch from a look-alike suffix", { tool: "http_fetch", action: "get", params: { url: "https://badexample.org/" } }, "guard_failed"],
    ["fetch without a url (guard on a missing parameter)", { tool: "http_fetch", action: "get", params: {} }, "guard_failed"],
    ["send mail", { tool: "gmail_send", action: "send", params: {} }, "scope_denied"],
    ["HEAD is not granted", { tool: "http_fetch", action: "head", params: { url: "https://example.com/" } }, "scope_denied"],
    ["openai is not granted (deny by default)", { tool: "openai", action: "chat", params: {} }, "scope_denied"],
  ] as const)("%s → %s", (_name, call, expected) => {
    const d = decide([p], call);
    expect(d.allow ? "allow" : d.reason).toBe(expected);
  });

  it("returns the quota and the rate limit as limits for the counters, tightest first", () => {
    const d = decide([p], { tool: "serpapi", action: "search" });
    expect(d.allow).toBe(true);
    if (!d.allow) return;
    expect(d.limits.map((l) => [l.kind, l.limit, l.perSecond])).toEqual([
      ["rate", 20, 10],
      ["quota", 1000, undefined],
    ]);
    expect(d.limits[1]!.windowEndMs).toBe(Date.UTC(2026, 10, 25));
  });

  it.each([
    ["Tuesday 07:59 Toronto", Date.UTC(2026, 10, 24, 12, 59), "off_hours"],
    ["Tuesday 08:00 Toronto (opens)", Date.UTC(2026, 10, 24, 13, 0), "allow"],
    ["Tuesday 17:59 Toronto", Date.UTC(2026, 10, 24, 22, 59), "allow"],
    ["Tuesday 18:00 Toronto (closed)", Date.UTC(2026, 10, 24, 23, 0), "off_hours"],
    ["Saturday noon Toronto", Date.UTC(2026, 10, 28, 17, 0), "off_hours"],
    // Summer time (UTC-4): 08:00 Toronto is 12:00 UTC.
    ["a July Monday 08:00 Toronto (EDT)", Date.UTC(2026, 6, 6, 12, 0), "allow"],
    ["a July Monday 07:59 Toronto (EDT)", Date.UTC(2026, 6, 6, 11, 59), "off_hours"],
    // DST starts Sunday 2026-03-08; Monday 09 is the first weekday on EDT.
    ["Friday before DST, 08:00 EST", Date.UTC(2026, 2, 6, 13, 0), "allow"],
    ["Monday after DST, 07:30 EDT (11:30 UTC)", Date.UTC(2026, 2, 9, 11, 30), "off_hours"],
    ["Monday after DST, 08:00 EDT (12:00 UTC)", Date.UTC(2026, 2, 9, 12, 0), "allow"],
  ])("schedule at %s → %s", (_name, now, expected) => {
    const d = decide([p], { tool: "serpapi", action: "search" }, { now });
    expect(d.allow ? "allow" : d.reason).toBe(expected);
  });
});

describe("merge rule across policies", () => {
  const globalAllow = policy({ name: "g", subject: { all: true }, rules: [{ effect: "allow", scopes: ["serpapi:*"] }] });
  const roleAllow = policy({ name: "r", subject: { role: "researcher" }, rules: [{ effect: "allow", scopes: ["openai:chat"] }] });
  const agentDeny = policy({ name: "a", subject: { agentId: "agent-1" }, rules: [{ effect: "deny", scopes: ["openai:*"] }] });

  it("allows are unioned across global, role and agent policies", () => {
    expect(decide([globalAllow, roleAllow], { tool: "serpapi", action: "search" }).allow).toBe(true);
    expect(decide([globalAllow, roleAllow], { tool: "openai", action: "chat" }).allow).toBe(true);
  });

  it("any explicit deny wins, wherever it comes from", () => {
    const d = decide([globalAllow, roleAllow, agentDeny], { tool: "openai", action: "chat" });
    expect(d).toMatchObject({ allow: false, reason: "scope_denied", rule: { policyName: "a", rule: 0 } });
  });

  it("a token's scopes narrow, never widen", () => {
    expect(decide([globalAllow], { tool: "serpapi", action: "search" }, { token: { scopes: ["openai:chat"] } })).toMatchObject({
      allow: false,
      reason: "scope_denied",
    });
    expect(decide([globalAllow], { tool: "gmail_send", action: "send" }, { token: { scopes: ["*:*"] } })).toMatchObject({
      allow: false,
      reason: "scope_denied",
    });
  });

  it("every constraint that covers a call applies: the tightest rate limit and quota are both checked", () => {
    const loose = policy({
      name: "loose",
      subject: { all: true },
      rules: [
        { effect: "allow", scopes: ["*"], rateLimit: { perSecond: 100 } },
        { effect: "allow", scopes: ["*"], quota: { limit: 1000, per: "hour" } },
      ],
    });
    const tight = policy({
      name: "tight",
      subject: { role: "researcher" },
      rules: [
        { effect: "allow", scopes: ["serpapi:*"], rateLimit: { perSecond: 1, burst: 2 } },
        { effect: "allow", scopes: ["serpapi:search"], quota: { limit: 5, per: "minute" } },
      ],
    });
    const d = decide([globalAllow, loose, tight], { tool: "serpapi", action: "search" });
    expect(d.allow && d.limits.map((l) => `${l.kind}:${l.limit}`)).toEqual(["rate:100", "rate:2", "quota:1000", "quota:5"]);
  });

  it("a suspended agent is refused before anything else", () => {
    expect(decide([globalAllow], { tool: "serpapi", action: "search" }, { agent: { ...researcher, status: "suspended" } })).toMatchObject({
      allow: false,
      reason: "agent_suspended",
    });
  });

  it("a disabled policy does not apply", () => {
    const off = policy({ name: "off", enabled: false, subject: { all: true }, rules: [{ effect: "deny", scopes: ["*"] }] });
    expect(decide([globalAllow, off], { tool: "serpapi", action: "search" }).allow).toBe(true);
  });
});

describe("rule kinds", () => {
  const base = { effect: "allow" as const, scopes: ["*"] };
  const grant = policy({ name: "grant", subject: { all: true }, rules: [base] });
  const withRule = (rule: object) => [grant, policy({ name: `c${n}`, subject: { all: true }, rules: [{ ...base, ...rule }] })];

  it.each([
    ["intent required, none given", { intents: ["research"] }, { tool: "serpapi", action: "search" }, {}, "intent_required"],
    [
      "intent required, wrong one",
      { intents: ["research"] },
      { tool: "serpapi", action: "search" },
      { token: { scopes: ["*:*"], intent: "billing" } },
      "intent_required",
    ],
    [
      "intent required, right one",
      { intents: ["research"] },
      { tool: "serpapi", action: "search" },
      { token: { scopes: ["*:*"], intent: "research" } },
      "allow",
    ],
    [
      "openai model allow-list passes",
      { guards: { model: { oneOf: ["gpt-4o-mini"] } } },
      { tool: "openai", action: "chat", params: { model: "gpt-4o-mini" } },
      {},
      "allow",
    ],
    [
      "openai model allow-list fails",
      { guards: { model: { oneOf: ["gpt-4o-mini"] } } },
      { tool: "openai", action: "chat", params: { model: "gpt-4o" } },
      {},
      "guard_failed",
    ],
    ["max_tokens at the cap", { guards: { max_tokens: { max: 500 } } }, { tool: "openai", action: "chat", params: { max_tokens: 500 } }, {}, "allow"],
    ["max_tokens over the cap", { guards: { max_tokens: { max: 500 } } }, { tool: "openai", action: "chat", params: { max_tokens: 501 } }, {}, "guard_failed"],
    ["max_tokens missing (fails closed)", { guards: { max_tokens: { max: 500 } } }, { tool: "openai", action: "chat", params: {} }, {}, "guard_failed"],
    [
      "optional guard on a missing parameter",
      { guards: { max_tokens: { max: 500, optional: true } } },
      { tool: "openai", action: "chat", params: {} },
      {},
      "allow",
    ],
    [
      "recipient domains pass",
      { guards: { "recipients.domain": { oneOf: ["corp.com"] } } },
      { tool: "gmail_send", action: "send", params: { to: ["a@corp.com"], cc: "b@CORP.com" } },
      {},
      "allow",
    ],
    [
      "one outside recipient fails",
      { guards: { "recipients.domain": { oneOf: ["corp.com"] } } },
      { tool: "gmail_send", action: "send", params: { to: ["a@corp.com", "x@gmail.com"] } },
      {},
      "guard_failed",
    ],
    [
      "max recipients",
      { guards: { "recipients.count": { max: 2 } } },
      { tool: "gmail_send", action: "send", params: { to: ["a@c.com", "b@c.com"], bcc: ["c@c.com"] } },
      {},
      "guard_failed",
    ],
    ["serpapi engines", { guards: { engine: { oneOf: ["google"] } } }, { tool: "serpapi", action: "search", params: { engine: "bing" } }, {}, "guard_failed"],
    ["http methods", { guards: { method: { oneOf: ["GET"] } } }, { tool: "http_fetch", action: "head", params: {} }, {}, "guard_failed"],
    [
      "denied domains",
      { guards: { "url.host": { notOneOf: ["*.internal.example"] } } },
      { tool: "http_fetch", action: "get", params: { url: "http://db.internal.example/" } },
      {},
      "guard_failed",
    ],
    ["max response size", { guards: { maxBytes: { max: 10000 } } }, { tool: "http_fetch", action: "get", params: { maxBytes: 20000 } }, {}, "guard_failed"],
    ["generic pattern", { guards: { q: { pattern: "^[a-z ]+$" } } }, { tool: "serpapi", action: "search", params: { q: "DROP TABLE" } }, {}, "guard_failed"],
    ["generic max length", { guards: { q: { maxLength: 3 } } }, { tool: "serpapi", action: "search", params: { q: "abcd" } }, {}, "guard_failed"],
    ["generic numeric range", { guards: { num: { min: 1, max: 10 } } }, { tool: "serpapi", action: "search", params: { num: 0 } }, {}, "guard_failed"],
    ["generic equals", { guards: { safe: { equals: "active" } } }, { tool: "serpapi", action: "search", params: { safe: "active" } }, {}, "allow"],
    [
      "a constraint on other scopes does not apply",
      { scopes: ["openai:*"], guards: { model: { oneOf: ["x"] } } },
      { tool: "serpapi", action: "search", params: {} },
      {},
      "allow",
    ],
  ] as const)("%s", (_name, rule, call, extra, expected) => {
    const d = decide(withRule(rule), call, extra);
    expect(d.allow ? "allow" : d.reason, d.allow ? "" : d.message).toBe(expected);
  });

  it("a deny rule with a guard applies only when the guard matches", () => {
    const policies = [
      grant,
      policy({
        name: "no-evil",
        subject: { all: true },
        rules: [{ effect: "deny", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["evil.test"] } } }],
      }),
    ];
    expect(decide(policies, { tool: "http_fetch", action: "get", params: { url: "https://evil.test/" } }).allow).toBe(false);
    expect(decide(policies, { tool: "http_fetch", action: "get", params: { url: "https://good.test/" } }).allow).toBe(true);
  });

  it("a schedule that wraps past midnight belongs to the day it opened", () => {
    const night = { days: ["fri" as const], hours: "22:00-06:00", timeZone: "UTC" };
    expect(inSchedule(Date.UTC(2026, 10, 27, 23, 0), night)).toBe(true); // Friday 23:00
    expect(inSchedule(Date.UTC(2026, 10, 28, 5, 59), night)).toBe(true); // Saturday 05:59, Friday's window
    expect(inSchedule(Date.UTC(2026, 10, 28, 6, 0), night)).toBe(false);
    expect(inSchedule(Date.UTC(2026, 10, 28, 23, 0), night)).toBe(false); // Saturday night
  });

  it("explain builds a trace naming every rule and what it did", () => {
    const p = policy(RESEARCHERS);
    const d = evaluate({
      agent: researcher,
      token: allScopes,
      policies: [p],
      now: TUE_10_TORONTO,
      call: { tool: "http_fetch", action: "get", params: { url: "https://evil.test/" } },
      explain: true,
    });
    expect(d.allow).toBe(false);
    expect(d.trace.map((t) => t.outcome)).toEqual(["granted", "not_applicable", "failed", "not_applicable", "pending", "pending"]);
  });
});

describe("calendar windows", () => {
  it("a day in Toronto runs local midnight to local midnight, 23 or 25 hours long across DST", () => {
    const spring = calendarWindow(Date.UTC(2026, 2, 8, 12), "day", "America/Toronto");
    expect(spring.startMs).toBe(Date.UTC(2026, 2, 8, 5));
    expect(spring.endMs - spring.startMs).toBe(23 * 3_600_000);
    const autumn = calendarWindow(Date.UTC(2026, 10, 1, 12), "day", "America/Toronto");
    expect(autumn.endMs - autumn.startMs).toBe(25 * 3_600_000);
  });

  it("the last millisecond of a window belongs to it, the next to the next", () => {
    const w = calendarWindow(Date.UTC(2026, 0, 1, 23, 59, 59, 999), "day", "UTC");
    expect(w.endMs).toBe(Date.UTC(2026, 0, 2));
    expect(calendarWindow(Date.UTC(2026, 0, 2), "day", "UTC").startMs).toBe(Date.UTC(2026, 0, 2));
    expect(calendarWindow(Date.UTC(2026, 0, 2, 10, 30, 15), "hour", "Asia/Kolkata").startMs).toBe(Date.UTC(2026, 0, 2, 10, 30));
  });
});

describe("policy validation names the bad field", () => {
  it.each([
    [{ name: "x", subject: { role: "r" } }, "rules is required"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "maybe", scopes: ["*"] }] }, "rules[0].effect must be one of allow, deny"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["serpapi"] }] }, "rules[0].scopes[0]"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], quota: { limit: 0, per: "day" } }] }, "rules[0].quota.limit"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], quota: { limit: 5, per: "week" } }] }, "rules[0].quota.per"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], schedule: { timeZone: "Mars/Olympus" } }] }, "rules[0].schedule.timeZone"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], schedule: { hours: "25:00-26:00" } }] }, "rules[0].schedule.hours"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], guards: { q: { pattern: "([" } } }] }, "rules[0].guards.q.pattern"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "deny", scopes: ["*"], quota: { limit: 5, per: "day" } }] }, "rules[0].effect"],
    [{ name: "x", subject: { role: "r", all: true }, rules: [{ effect: "allow", scopes: ["*"] }] }, "subject"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], rateLimit: { perSecond: 0 } }] }, "rules[0].rateLimit.perSecond"],
    [{ name: "x", subject: { role: "r" }, rules: [{ effect: "allow", scopes: ["*"], colour: "red" }] }, "rules[0].colour is not a known field"],
  ])("%j → %s", (doc, fragment) => {
    expect(() => parsePolicy(doc)).toThrow(fragment);
  });

  it("accepts YAML, and its hash ignores key order", () => {
    const yaml = parsePolicy("name: y\nsubject: {role: r}\nrules:\n  - effect: allow\n    scopes: ['*']\n", "yaml");
    expect(yaml.rules[0]!.scopes).toEqual(["*"]);
    expect(policyHash({ name: "a", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] })).toBe(
      policyHash({ rules: [{ scopes: ["*"], effect: "allow" }], subject: { all: true }, name: "a" }),
    );
  });
});
