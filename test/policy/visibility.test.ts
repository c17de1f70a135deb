import { describe, expect, it } from "vitest";
import { evaluate } from "../../src/policy/evaluate.js";
import { visibleTo } from "../../src/policy/visibility.js";
import type { Policy, PolicyDocument } from "../../src/policy/types.js";

const policy = (document: PolicyDocument, id = document.name): Policy => ({ id, version: 1, hash: id, document });
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

describe("visibleTo: deny-by-default listing", () => {
  const policies = [
    policy({
      name: "grant",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["serpapi:search", "http_fetch:*", "openai:chat", "gmail_send:send", "crm:read"] }],
    }),
    policy({ name: "no-mail", subject: { all: true }, rules: [{ effect: "deny", scopes: ["gmail_send:*"] }] }),
    policy({
      name: "no-internal-fetch",
      subject: { all: true },
      rules: [{ effect: "deny", scopes: ["http_fetch:get"], guards: { "url.host": { oneOf: ["*.internal"] } } }],
    }),
    policy({
      name: "chat-budget",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["openai:chat"], quota: { limit: 1, per: "day" }, schedule: { days: ["sat"] } }],
    }),
    policy({ name: "crm-intent", subject: { all: true }, rules: [{ effect: "allow", scopes: ["crm:read"], intents: ["support"] }] }),
  ];
  const token = { scopes: ["*:*"], intent: undefined };

  it("hides what the token's scopes do not cover", () => {
    expect(visibleTo({ scopes: ["serpapi:search"], intent: undefined }, policies, "serpapi", "search")).toBe(true);
    expect(visibleTo({ scopes: ["serpapi:search"], intent: undefined }, policies, "openai", "chat")).toBe(false);
  });

  it("hides what an unconditional deny rule covers, and what no plain allow rule grants", () => {
    expect(visibleTo(token, policies, "gmail_send", "send")).toBe(false);
    expect(visibleTo(token, policies, "unknown", "thing")).toBe(false);
    expect(visibleTo(token, [], "serpapi", "search")).toBe(false);
  });

  it("shows what only arguments, the clock or counters could refuse: those are judged at call time", () => {
    expect(visibleTo(token, policies, "http_fetch", "get")).toBe(true);
    expect(visibleTo(token, policies, "openai", "chat")).toBe(true);
  });

  it("judges intent conditions from the token", () => {
    expect(visibleTo(token, policies, "crm", "read")).toBe(false);
    expect(visibleTo({ scopes: ["*:*"], intent: "support" }, policies, "crm", "read")).toBe(true);
  });

  it("never shows an action that evaluate refuses whatever the arguments (scope or plain deny)", () => {
    for (const [tool, action] of [
      ["gmail_send", "send"],
      ["unknown", "thing"],
      ["crm", "read"],
    ] as const) {
      const decision = evaluate({ agent: { id: "a", role: "r" }, token, call: { tool, action, params: {} }, policies, now: NOW });
      expect(decision.allow).toBe(false);
      expect(visibleTo(token, policies, tool, action)).toBe(false);
    }
  });
});
