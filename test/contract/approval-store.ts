import { describe, expect, it } from "vitest";
import type { ApprovalStore, NewApproval } from "../../src/approvals/approval-store.js";

/** Every method of the approval store; the compiler refuses a list that misses one. */
export const APPROVAL_STORE_METHODS = ["insert", "get", "list", "decide", "finish", "expire", "failInterrupted", "countPending"] as const;
const exhaustive: [Exclude<keyof ApprovalStore, (typeof APPROVAL_STORE_METHODS)[number]>] extends [never] ? true : false = true;

/** The approval store's contract, for every SQL backend. `open` gives a fresh, migrated store and how to close it. */
export function approvalStoreContract(name: string, open: () => Promise<{ approvals: ApprovalStore; close: () => Promise<void> }>) {
  describe(`approval store contract: ${name}`, () => {
    const called = new Set<string>();
    const opened = async () => {
      const { approvals, close } = await open();
      const recorded = new Proxy(approvals, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== "function") return value;
          called.add(String(prop));
          return value.bind(target);
        },
      });
      return { approvals: recorded, close };
    };
    const approval = (id: string, requestedAt: number, over: Partial<NewApproval> = {}): NewApproval => ({
      id,
      agentId: "a1",
      tool: "gmail_send",
      action: "send",
      paramsView: '{"to":["x@outside.test"]}',
      argsHash: "h".repeat(64),
      sealedCall: `sealed-${id}`,
      correlationId: `c-${id}`,
      door: "rest",
      callbackUrl: null,
      reason: "outside example.com",
      rule: "{}",
      approvers: '["ops"]',
      requestedAt,
      expiresAt: requestedAt + 1000,
      ...over,
    });

    it("stores a pending approval and decides it once: approved, then finished with the result", async () => {
      const { approvals, close } = await opened();
      try {
        await approvals.insert(approval("a", 100, { callbackUrl: "http://127.0.0.1/cb" }));
        expect(await approvals.get("a")).toMatchObject({
          status: "pending",
          agentId: "a1",
          sealedCall: "sealed-a",
          callbackUrl: "http://127.0.0.1/cb",
          requestedAt: 100,
          expiresAt: 1100,
          decidedAt: null,
          decidedBy: null,
          result: null,
        });
        expect(await approvals.get("missing")).toBeUndefined();
        expect(await approvals.countPending()).toBe(1);
        expect(await approvals.finish("a", { status: "executed", result: "{}", at: 150 })).toBe(false); // not approved yet
        const decided = await approvals.decide("a", { status: "approved", by: "admin", reason: "fine", at: 200 });
        expect(decided).toMatchObject({ status: "approved", decidedBy: "admin", decisionReason: "fine", decidedAt: 200 });
        expect(await approvals.decide("a", { status: "denied", by: "someone", reason: null, at: 210 })).toBeUndefined();
        expect(await approvals.countPending()).toBe(0);
        expect(await approvals.finish("a", { status: "executed", result: '{"ok":true}', at: 300 })).toBe(true);
        expect(await approvals.finish("a", { status: "failed", error: "{}", at: 310 })).toBe(false);
        expect(await approvals.get("a")).toMatchObject({ status: "executed", result: '{"ok":true}', error: null, finishedAt: 300 });
      } finally {
        await close();
      }
    });

    it("refuses a decision at or after expiresAt, and expires pending ones exactly once", async () => {
      const { approvals, close } = await opened();
      try {
        await approvals.insert(approval("late", 100));
        await approvals.insert(approval("later", 100, { expiresAt: 5000 }));
        await approvals.insert(approval("denied", 100));
        expect(await approvals.decide("denied", { status: "denied", by: "admin", reason: null, at: 500 })).toMatchObject({ status: "denied" });
        expect(await approvals.decide("late", { status: "approved", by: "admin", reason: null, at: 1100 })).toBeUndefined();
        expect(await approvals.get("late")).toMatchObject({ status: "pending" });
        const [first, second] = await Promise.all([approvals.expire(1100), approvals.expire(1100)]);
        expect([...first, ...second].map((a) => a.id)).toEqual(["late"]);
        expect(await approvals.get("late")).toMatchObject({ status: "expired", decidedAt: 1100 });
        expect(await approvals.get("denied")).toMatchObject({ status: "denied" });
        expect(await approvals.countPending()).toBe(1);
      } finally {
        await close();
      }
    });

    it("fails approved calls that never recorded an outcome, once, and leaves recent and finished ones alone", async () => {
      const { approvals, close } = await opened();
      try {
        for (const id of ["stuck", "running", "done"]) await approvals.insert(approval(id, 100, { expiresAt: 10_000 }));
        await approvals.decide("stuck", { status: "approved", by: "admin", reason: null, at: 200 });
        await approvals.decide("running", { status: "approved", by: "admin", reason: null, at: 900 });
        await approvals.decide("done", { status: "approved", by: "admin", reason: null, at: 200 });
        await approvals.finish("done", { status: "executed", result: "{}", at: 300 });
        const [first, second] = await Promise.all([
          approvals.failInterrupted(500, '{"code":"internal_error"}', 1000),
          approvals.failInterrupted(500, "{}", 1000),
        ]);
        expect([...first, ...second].map((a) => a.id)).toEqual(["stuck"]);
        expect(await approvals.get("stuck")).toMatchObject({ status: "failed", error: '{"code":"internal_error"}', finishedAt: 1000 });
        expect(await approvals.finish("stuck", { status: "executed", result: "{}", at: 1100 })).toBe(false);
        expect((await approvals.get("running"))!.status).toBe("approved");
        expect((await approvals.get("done"))!.status).toBe("executed");
      } finally {
        await close();
      }
    });

    it("lets exactly one of many concurrent deciders win", async () => {
      const { approvals, close } = await opened();
      try {
        await approvals.insert(approval("race", 100));
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => approvals.decide("race", { status: i % 2 === 0 ? "approved" : "denied", by: `p${i}`, reason: null, at: 200 })),
        );
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        expect((await approvals.get("race"))!.decidedBy).toBe(winners[0]!.decidedBy);
      } finally {
        await close();
      }
    });

    it("lists newest first with filters and a cursor", async () => {
      const { approvals, close } = await opened();
      try {
        await approvals.insert(approval("a1", 10));
        await approvals.insert(approval("a2", 20, { tool: "serpapi" }));
        await approvals.insert(approval("a3", 20, { agentId: "a2" }));
        await approvals.insert(approval("a4", 30));
        await approvals.decide("a4", { status: "denied", by: "admin", reason: null, at: 31 });
        expect((await approvals.list({ limit: 10 })).map((a) => a.id)).toEqual(["a4", "a3", "a2", "a1"]);
        expect((await approvals.list({ limit: 10, status: "pending", agentId: "a1" })).map((a) => a.id)).toEqual(["a2", "a1"]);
        expect((await approvals.list({ limit: 10, tool: "serpapi" })).map((a) => a.id)).toEqual(["a2"]);
        const page = await approvals.list({ limit: 2 });
        const last = page.at(-1)!;
        expect((await approvals.list({ limit: 10, before: { requestedAt: last.requestedAt, id: last.id } })).map((a) => a.id)).toEqual(["a2", "a1"]);
      } finally {
        await close();
      }
    });

    it("exercises every method (no skips)", () => {
      expect(exhaustive).toBe(true);
      expect(APPROVAL_STORE_METHODS.filter((m) => !called.has(m))).toEqual([]);
    });
  });
}
