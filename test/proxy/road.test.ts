import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/index.js";
import { compose, stage, type CallOutcome, type ToolCall } from "../../src/proxy/call.js";
import { ACCEPTANCE_ENDS_AFTER, roadStages, type RoadDeps } from "../../src/proxy/road.js";
import { authorize, hold, observe, type ApprovalHandling, type Authorizer, type HeldCall } from "../../src/proxy/stages.js";
import type { AuditEntry } from "../../src/audit/index.js";
import type { ApprovalRequirement } from "../../src/policy/types.js";
import { paramsFingerprint } from "../../src/resilience/executor.js";
import { canonicalJson, exceedsBounds } from "../../src/util/canonical-json.js";
import type { VerifiedToken } from "../../src/identity/index.js";

const call = (over: Partial<ToolCall> = {}): ToolCall => ({
  door: "rest",
  phase: "now",
  tool: "t",
  action: "a",
  params: {},
  correlationId: "c",
  proof: { kind: "bearer", rawToken: "x" },
  cacheMode: "default",
  principal: { agentId: "agent", role: "r", scopes: [], tokenId: "tok" } as unknown as VerifiedToken,
  ...over,
});
const answered: CallOutcome = { kind: "answered", execution: { reply: { status: 200, body: {}, bytes: 2 }, attempts: 1, cache: "none", upstreamMs: 0 } };

describe("the road as one list", () => {
  it("runs its stages in the documented order, invoke last", () => {
    const noop = stage("x", async (c, next) => next(c));
    const names = roadStages({
      resilience: {
        stages: {
          idempotency: { ...noop, name: "idempotency" },
          cache: { ...noop, name: "cache" },
          breaker: { ...noop, name: "breaker" },
          retry: { ...noop, name: "retry" },
          attempt: { ...noop, name: "attempt" },
        },
      },
    } as unknown as RoadDeps).map((s) => s.name);
    expect(names).toEqual([
      "observe",
      "authenticate",
      "resolve",
      "authorize",
      "credential",
      "hold",
      "idempotency",
      "redact",
      "cache",
      "retry",
      "breaker",
      "attempt",
    ]);
    // Deferred doors accept work after every check, before anything that could reach the upstream.
    expect(names.slice(0, names.indexOf(ACCEPTANCE_ENDS_AFTER) + 1)).toEqual(["observe", "authenticate", "resolve", "authorize", "credential"]);
  });

  it("compose runs the first stage outermost, each calling next, and refuses duplicate names", async () => {
    const seen: string[] = [];
    const trace = (name: string) =>
      stage(name, async (c, next) => {
        seen.push(`>${name}`);
        const o = await next(c);
        seen.push(`<${name}`);
        return o;
      });
    const run = compose([trace("a"), trace("b")], async () => {
      seen.push("invoke");
      return answered;
    });
    expect((await run(call())).kind).toBe("answered");
    expect(seen).toEqual([">a", ">b", "invoke", "<b", "<a"]);
    expect(() => compose([trace("a"), trace("a")], async () => answered)).toThrow(/twice/);
  });

  it("a stage can answer without calling next (nothing after it runs)", async () => {
    let invoked = false;
    const refuse = stage("gate", async () => ({ kind: "refused", error: new GatewayError("invalid_request", "no"), stage: "gate" }));
    const o = await compose([refuse], async () => ((invoked = true), answered))(call());
    expect(o.kind).toBe("refused");
    expect(invoked).toBe(false);
  });
});

describe("authorize charges and refunds from the typed outcome", () => {
  const fake = () => {
    const refunds: string[] = [];
    const counted: string[] = [];
    const authorizer: Authorizer = {
      async charge(_t, c, what) {
        counted.push(what);
        if (c.tool === "denied") throw new GatewayError("policy_denied", "no", { details: { reason: "policy_denied" } });
        return { quotas: [{ kind: "quota", key: "q", limit: 1, ref: {} as never, countFailures: false }] };
      },
      async refund(_c, why) {
        refunds.push(why);
      },
    };
    return { stage: authorize({ authorizer }), refunds, counted };
  };
  const error = new GatewayError("upstream_error", "boom");

  it.each<[string, CallOutcome, string[]]>([
    ["answered", answered, []],
    ["refused below (never sent)", { kind: "refused", error: new GatewayError("circuit_open", "open"), stage: "breaker" }, ["not_sent"]],
    ["denied below (SSRF judge)", { kind: "denied", error: new GatewayError("ssrf_blocked", "no"), stage: "invoke" }, ["not_sent"]],
    ["failed upstream", { kind: "failed", error, attempts: 3, upstreamMs: 1 }, ["upstream_failed"]],
  ])("%s", async (_name, outcome, expected) => {
    const f = fake();
    await f.stage.run(call(), async () => outcome);
    expect(f.refunds).toEqual(expected);
  });

  it("a denial is an outcome of its own and nothing is refunded (nothing was taken)", async () => {
    const f = fake();
    const o = await f.stage.run(call({ tool: "denied" }), async () => answered);
    expect(o).toMatchObject({ kind: "denied", stage: "authorize" });
    expect(f.refunds).toEqual([]);
  });

  it("counts rate limits when deferred work is accepted and quotas when it runs", async () => {
    const f = fake();
    for (const phase of ["now", "accept", "run"] as const) await f.stage.run(call({ phase }), async () => answered);
    expect(f.counted).toEqual(["all", "rate", "quota"]);
  });
});

describe("a call policy holds for approval", () => {
  const requirement: ApprovalRequirement = {
    rule: { policyId: "p", policyName: "p", version: 1, rule: 1 },
    ttlSeconds: 60,
    approvers: [],
    reason: "needs a person",
    webhooks: [],
  };
  const approving = () => {
    const asked: ApprovalHandling[] = [];
    const counted: string[] = [];
    const authorizer: Authorizer = {
      async charge(_t, _c, what, approval = "refuse") {
        asked.push(approval);
        counted.push(what);
        return approval === "hold" ? { quotas: [], heldFor: requirement } : { quotas: [] };
      },
      async refund() {},
    };
    return { authorizer, asked, counted };
  };

  it("authorize asks to hold a live call, to refuse a job, and treats the approval door's run as approved", async () => {
    const f = approving();
    const seen: (ApprovalRequirement | undefined)[] = [];
    const stageUnderTest = authorize({ authorizer: f.authorizer });
    const after = async (c: ToolCall) => (seen.push(c.heldFor), answered);
    await stageUnderTest.run(call({ phase: "now" }), after);
    await stageUnderTest.run(call({ phase: "accept", door: "job" }), after);
    await stageUnderTest.run(call({ phase: "run", door: "job" }), after);
    await stageUnderTest.run(call({ phase: "run", door: "approval" }), after);
    expect(f.asked).toEqual(["hold", "refuse", "refuse", "satisfied"]);
    expect(seen).toEqual([requirement, undefined, undefined, undefined]);
  });

  it("hold keeps a marked call and answers `held` without calling next; an unmarked call passes", async () => {
    const kept: HeldCall[] = [];
    const s = hold({
      approvals: { hold: async (h) => (kept.push(h), { id: "apr_1", status: "pending", expiresAt: "x", argsHash: "h" }) },
      acceptedOf: (c) => ({ tool: c.tool, action: c.action, params: c.params, agentId: "agent" }),
    });
    let sent = 0;
    const o = await s.run(call({ heldFor: requirement, callbackUrl: "http://127.0.0.1/cb" }), async () => (sent++, answered));
    expect(o).toEqual({ kind: "held", approval: { id: "apr_1", status: "pending", expiresAt: "x", argsHash: "h" } });
    expect(sent).toBe(0);
    expect(kept[0]).toMatchObject({
      requirement,
      correlationId: "c",
      door: "rest",
      callbackUrl: "http://127.0.0.1/cb",
      accepted: { agentId: "agent", tool: "t" },
    });
    expect((await s.run(call(), async () => (sent++, answered))).kind).toBe("answered");
    expect(sent).toBe(1);
  });

  it("without a holder a marked call is refused, never sent; a failing holder refuses too", async () => {
    const bare = hold({ acceptedOf: () => ({ tool: "t", action: "a", params: {}, agentId: "a" }) });
    const o = await bare.run(call({ heldFor: requirement }), async () => answered);
    expect(o).toMatchObject({ kind: "refused", error: { code: "approval_required" } });
    const broken = hold({
      approvals: { hold: async () => Promise.reject(new Error("db down")) },
      acceptedOf: () => ({ tool: "t", action: "a", params: {}, agentId: "a" }),
    });
    expect(await broken.run(call({ heldFor: requirement }), async () => answered)).toMatchObject({ kind: "refused", error: { code: "internal_error" } });
  });

  it("observe audits a held call as pending_approval with status 202", async () => {
    const entries: AuditEntry[] = [];
    const o = observe({ audit: { record: (e) => entries.push(e) }, now: () => 0 });
    await o.run(call(), async () => ({ kind: "held", approval: { id: "apr_1", status: "pending", expiresAt: "x", argsHash: "h" } }));
    expect(entries[0]).toMatchObject({ decision: "pending_approval", status: 202, reason: null });
  });
});

describe("canonical JSON and parameter bounds", () => {
  const deep = (depth: number) => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = { a: v };
    return v;
  };

  it("canonicalises any depth without overflowing the stack", () => {
    expect(() => paramsFingerprint(deep(200_000))).not.toThrow();
    expect(canonicalJson({ b: [1, { d: 1, c: null }], a: "x" })).toBe('{"a":"x","b":[1,{"c":null,"d":1}]}');
    expect(canonicalJson([undefined, "s", true])).toBe('[null,"s",true]');
    expect(canonicalJson(deep(3))).toBe('{"a":{"a":{"a":1}}}');
  });

  it("bounds depth and size iteratively", () => {
    expect(exceedsBounds(deep(32))).toBeUndefined();
    expect(exceedsBounds(deep(33))).toBe("depth");
    expect(exceedsBounds(deep(100_000))).toBe("depth");
    expect(exceedsBounds({ list: Array.from({ length: 30_000 }, () => 0) })).toBe("size");
  });
});
