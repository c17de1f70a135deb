import { describe, expect, it } from "vitest";
import type { VerifiedToken } from "../../src/identity/index.js";
import { MemoryCounters } from "../../src/limits/counters.js";
import { createPolicyAuthorizer } from "../../src/policy/authorizer.js";
import { parsePolicy, policyHash } from "../../src/policy/schema.js";
import type { PolicyService } from "../../src/policy/service.js";

const NOW = Date.UTC(2026, 10, 24, 12);
const token: VerifiedToken = {
  tokenId: "t1",
  agentId: "a1",
  agentName: "a",
  role: "assistant",
  scopes: ["*"],
  intent: undefined,
  issuedAt: NOW,
  expiresAt: NOW + 60_000,
  refreshRecommended: false,
};
const call = { tool: "gmail_send", action: "send", params: { to: ["x@outside.test"], subject: "s", text: "t" } };

/** One allow, one approval rule, a one-call burst and a one-call quota: what each phase counts shows. */
function authorizer() {
  const document = parsePolicy({
    name: "held-mail",
    subject: { all: true },
    rules: [
      { effect: "allow", scopes: ["gmail_send:send"] },
      { id: "needs-approval", effect: "allow", scopes: ["gmail_send:send"], requireApproval: { ttlSeconds: 60 } },
      { id: "burst", effect: "allow", scopes: ["gmail_send:send"], rateLimit: { perSecond: 0.001, burst: 1 } },
      { id: "quota", effect: "allow", scopes: ["gmail_send:send"], quota: { limit: 1, per: "day" } },
    ],
  });
  const policies = { applicable: () => [{ id: "p1", version: 1, hash: policyHash(document), document }] } as unknown as PolicyService;
  return createPolicyAuthorizer({ policies, counters: new MemoryCounters(), now: () => NOW, countFailedCalls: false });
}

describe("the authorizer and calls that need approval", () => {
  it("hold: counts the rate limit, not the quota, and says what the call waits for", async () => {
    const a = authorizer();
    const held = await a.charge(token, call, "all", "hold");
    expect(held.quotas).toEqual([]);
    expect(held.heldFor).toMatchObject({ rule: { ruleId: "needs-approval" }, ttlSeconds: 60 });
    // The burst of one was used by the held call: a second one is refused, not held.
    await expect(a.charge(token, call, "all", "hold")).rejects.toMatchObject({ code: "rate_limited" });
    // The quota is untouched until the approved call runs; then it is used up.
    expect((await a.charge(token, call, "quota", "satisfied")).quotas).toHaveLength(1);
    await expect(a.charge(token, call, "quota", "satisfied")).rejects.toMatchObject({ code: "quota_exceeded" });
  });

  it("refuse: approval_required with the rule, before anything is counted", async () => {
    const a = authorizer();
    await expect(a.charge(token, call, "rate", "refuse")).rejects.toMatchObject({
      code: "approval_required",
      status: 403,
      details: { reason: "approval_required", rule: { ruleId: "needs-approval" } },
    });
    await expect(a.charge(token, call, "quota")).rejects.toMatchObject({ code: "approval_required" });
    // Nothing was taken: the one-call burst is still there.
    expect((await a.charge(token, call, "all", "hold")).heldFor).toBeDefined();
  });
});
