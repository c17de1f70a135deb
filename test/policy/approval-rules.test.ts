import { describe, expect, it } from "vitest";
import { evaluate } from "../../src/policy/evaluate.js";
import { parsePolicy, policyHash } from "../../src/policy/schema.js";
import type { Policy, PolicyDocument } from "../../src/policy/types.js";
import { DEFAULT_POLICIES, EXAMPLE_APPROVAL_POLICY } from "../../src/policy/service.js";
import { ROOT } from "../helpers/promtool.js";
import fs from "node:fs";
import path from "node:path";

/** The example in docs/policy.md: mail outside example.com needs a person; inside it goes at once. */
const MAIL = EXAMPLE_APPROVAL_POLICY;

describe("the documented approval example", () => {
  it("is the JSON in docs/policy.md, parses, and is not installed by default", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs", "policy.md"), "utf8");
    const block = /## Approvals[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)![1]!;
    expect(JSON.parse(block)).toEqual(EXAMPLE_APPROVAL_POLICY);
    expect(parsePolicy(block)).toEqual(EXAMPLE_APPROVAL_POLICY);
    expect(DEFAULT_POLICIES.map((p) => p.name)).not.toContain(EXAMPLE_APPROVAL_POLICY.name);
  });
});

let n = 0;
const policy = (doc: unknown): Policy => {
  const document = parsePolicy(doc);
  return { id: `p${++n}`, version: 1, hash: policyHash(document), document };
};
const mail = (to: string[], extra: Record<string, unknown> = {}) => ({ tool: "gmail_send", action: "send", params: { to, subject: "s", text: "t", ...extra } });
const decide = (policies: Policy[], call: ReturnType<typeof mail>, explain = false) =>
  evaluate({ agent: { id: "a1", role: "assistant" }, token: { scopes: ["*"] }, policies, now: Date.UTC(2026, 10, 24, 15), call, explain });

describe("requireApproval on an allow rule", () => {
  const p = policy(MAIL);

  it("inside example.com the call is simply allowed; any recipient outside needs approval", () => {
    expect(decide([p], mail(["a@example.com", "b@EXAMPLE.com"]))).toMatchObject({ allow: true });
    expect(decide([p], mail(["a@example.com"]))).not.toHaveProperty("approval");
    for (const to of [["x@outside.test"], ["a@example.com", "x@outside.test"], ["a@sub.example.com"]]) {
      const d = decide([p], mail(to));
      expect(d.allow, to.join()).toBe(true);
      if (!d.allow) continue;
      expect(d.approval).toMatchObject({ rule: { policyName: MAIL.name, ruleId: "outside-mail", rule: 1 }, ttlSeconds: 3600, approvers: ["security-team"] });
      expect(d.approval!.reason).toContain("recipients.domain");
    }
  });

  it("a refusal from another rule wins: a call policy refuses is never held", () => {
    const cap = policy({
      name: "cap",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["gmail_send:send"], guards: { "recipients.count": { max: 1 } } }],
    });
    expect(decide([p, cap], mail(["x@outside.test", "y@outside.test"]))).toMatchObject({ allow: false, reason: "guard_failed" });
    const deny = policy({ name: "deny", subject: { all: true }, rules: [{ effect: "deny", scopes: ["gmail_send:*"] }] });
    expect(decide([p, deny], mail(["x@outside.test"]))).toMatchObject({ allow: false, reason: "scope_denied" });
  });

  it("without a plain allow rule nothing is granted: requireApproval never widens policy", () => {
    const only = policy({ name: "only", subject: { all: true }, rules: [{ effect: "allow", scopes: ["gmail_send:send"], requireApproval: {} }] });
    expect(decide([only], mail(["x@outside.test"]))).toMatchObject({ allow: false, reason: "scope_denied" });
  });

  it("a rule without conditions holds every call it covers, with the default ttl; several rules merge (shortest ttl, all approvers)", () => {
    const always = policy({
      name: "always",
      subject: { all: true },
      rules: [
        { effect: "allow", scopes: ["gmail_send:send"] },
        { effect: "allow", scopes: ["gmail_send:*"], requireApproval: { approvers: ["ops"] } },
      ],
    });
    const d = decide([always], mail(["a@example.com"]));
    expect(d.allow && d.approval).toMatchObject({ ttlSeconds: 3600, approvers: ["ops"] });
    const short = policy({
      name: "short",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["gmail_send:send"], requireApproval: { ttlSeconds: 120 } }],
    });
    const all = decide([always, p, short], mail(["x@outside.test"]));
    expect(all.allow && all.approval).toMatchObject({ ttlSeconds: 120, approvers: ["ops", "security-team"] });
  });

  it("explain's trace says which rule asks for approval", () => {
    const d = decide([p], mail(["x@outside.test"]), true);
    expect(d.trace.find((e) => e.ruleId === "outside-mail")).toMatchObject({ kind: "constraint", outcome: "approval_required" });
    const ok = decide([p], mail(["a@example.com"]), true);
    expect(ok.trace.find((e) => e.ruleId === "outside-mail")).toMatchObject({ outcome: "passed" });
  });

  it.each([
    [{ ttlSeconds: 0 }, "rules[0].requireApproval.ttlSeconds"],
    [{ ttlSeconds: 7 * 86_400 + 1 }, "rules[0].requireApproval.ttlSeconds"],
    [{ ttlSeconds: 1.5 }, "rules[0].requireApproval.ttlSeconds"],
    [{ approvers: "ops" }, "rules[0].requireApproval.approvers"],
    [{ approvers: [""] }, "rules[0].requireApproval.approvers[0]"],
    [{ whoever: true }, "rules[0].requireApproval.whoever"],
    [{ webhookUrl: "ftp://x.test/hook" }, "rules[0].requireApproval.webhookUrl"],
    [{ webhookUrl: "http://user:pw@hooks.example.test/hook" }, "rules[0].requireApproval.webhookUrl"],
    [{ webhookFormat: "teams" }, "rules[0].requireApproval.webhookFormat"],
    ["yes", "rules[0].requireApproval"],
  ])("refuses requireApproval %j naming %s", (requireApproval, field) => {
    const doc = { name: "bad", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], requireApproval }] } as unknown as PolicyDocument;
    expect(() => parsePolicy(doc)).toThrow(expect.objectContaining({ code: "policy_invalid", details: { field } }));
  });

  it("refuses requireApproval on a deny rule", () => {
    expect(() => parsePolicy({ name: "bad", subject: { all: true }, rules: [{ effect: "deny", scopes: ["*"], requireApproval: {} }] })).toThrow(
      expect.objectContaining({ details: { field: "rules[0].requireApproval" } }),
    );
  });
});
