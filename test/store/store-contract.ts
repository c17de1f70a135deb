import { describe, expect, it } from "vitest";
import {
  UniqueViolation,
  type AgentRecord,
  type AgentStore,
  type AssertionStore,
  type AuditRecord,
  type AuditStore,
  type CredentialStore,
  type MetaStore,
  type PolicyStore,
  type SigningKeyStore,
  type SqlStore,
  type Store,
  type TokenRecord,
  type TokenStore,
} from "../../src/store/index.js";

/** Every method of every slice of the storage port. The compiler refuses a list that misses one. */
export const STORE_SLICES = {
  meta: ["getMeta", "setMetaIfAbsent", "setMeta"],
  agents: ["insertAgent", "getAgent", "listAgents", "setAgentStatus", "agentIdsUpdatedSince"],
  tokens: ["insertToken", "getToken", "revokeToken", "revokeAgentTokens", "revokedTokenIdsSince"],
  assertions: ["useAssertionJti", "pruneExpired"],
  signingKeys: ["insertSigningKey", "listSigningKeys", "retireSigningKey"],
  policies: ["listPolicies", "getPolicyVersions", "insertPolicy", "addPolicyVersion", "deletePolicy"],
  credentials: ["insertCredentialVersion", "listCredentialVersions", "getCredentialVersion", "setActiveCredential", "listActiveCredentials"],
  audit: ["insertAuditRecords", "queryAudit", "openAuditWriter", "listAuditChains", "auditChainIds", "auditChainRecords", "countUnchainedAudit"],
  lifecycle: ["exclusive", "ping", "close"],
} as const;
type Missing<T, L extends readonly PropertyKey[]> = Exclude<keyof T, L[number]>;
// Every member is `never` while each slice is listed in full.
type Unlisted = [
  Missing<MetaStore, typeof STORE_SLICES.meta>,
  Missing<AgentStore, typeof STORE_SLICES.agents>,
  Missing<TokenStore, typeof STORE_SLICES.tokens>,
  Missing<AssertionStore, typeof STORE_SLICES.assertions>,
  Missing<SigningKeyStore, typeof STORE_SLICES.signingKeys>,
  Missing<PolicyStore, typeof STORE_SLICES.policies>,
  Missing<CredentialStore, typeof STORE_SLICES.credentials>,
  Missing<AuditStore, typeof STORE_SLICES.audit>,
  Exclude<keyof Store, (typeof STORE_SLICES)[keyof typeof STORE_SLICES][number] | "kind" | "driver">,
];
// A method added to a slice (or to Store) without being listed above makes this line fail to compile.
const exhaustive: Unlisted extends never[] ? true : false = true;

/**
 * The storage port's contract, one suite per slice: every backend must pass it, and the last test
 * fails if any method of any slice was never called. `open` gives a fresh, migrated store.
 */
export function storeContract(name: string, openStore: () => Promise<SqlStore>) {
  describe(`store contract: ${name}`, () => {
    const called = new Set<string>();
    // Records which methods the suite calls, so the coverage check below is about behaviour, not names.
    const open = async (): Promise<SqlStore> => {
      const store = await openStore();
      return new Proxy(store, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== "function") return value;
          called.add(String(prop));
          return value.bind(target);
        },
      });
    };
    const agent = (id: string, name = id): AgentRecord => ({
      id,
      name,
      role: "researcher",
      status: "active",
      keyAlgorithm: "EdDSA",
      publicKeyJwk: { kty: "OKP", crv: "Ed25519", x: "abc" },
      createdAt: 1_000,
      updatedAt: 1_000,
    });
    const token = (id: string, agentId: string, expiresAt = 10_000): TokenRecord => ({
      id,
      agentId,
      payloadHash: `hash-${id}`,
      scopes: ["serpapi:search"],
      intent: null,
      issuedAt: 1_000,
      expiresAt,
      revokedAt: null,
      revokedReason: null,
    });

    it("stores, reads and lists agents; refuses duplicate names and ids", async () => {
      const store = await open();
      try {
        await store.insertAgent(agent("a1"));
        await store.insertAgent({ ...agent("a2"), createdAt: 2_000 });
        expect(await store.getAgent("a1")).toEqual(agent("a1"));
        expect(await store.getAgent("missing")).toBeUndefined();
        expect((await store.listAgents({ limit: 10, offset: 0 })).map((a) => a.id)).toEqual(["a1", "a2"]);
        expect((await store.listAgents({ limit: 1, offset: 1 })).map((a) => a.id)).toEqual(["a2"]);
        await expect(store.insertAgent(agent("a3", "a1"))).rejects.toBeInstanceOf(UniqueViolation);
        await expect(store.insertAgent(agent("a1", "other"))).rejects.toBeInstanceOf(UniqueViolation);
        const suspended = await store.setAgentStatus("a1", "suspended", 5_000);
        expect(suspended).toMatchObject({ status: "suspended", updatedAt: 5_000 });
        expect(await store.getAgent("a1")).toMatchObject({ status: "suspended" });
        expect(await store.setAgentStatus("missing", "active", 1)).toBeUndefined();
        // Reconciling instances read which agents changed since their last pass, bounded.
        expect(await store.agentIdsUpdatedSince(4_000, 10)).toEqual(["a1"]);
        expect(new Set(await store.agentIdsUpdatedSince(0, 10))).toEqual(new Set(["a1", "a2"]));
        expect(await store.agentIdsUpdatedSince(0, 1)).toHaveLength(1);
        expect(await store.agentIdsUpdatedSince(5_001, 10)).toEqual([]);
        // Search: part of the name, id or role, any case; LIKE wildcards in the text match literally.
        await store.insertAgent({ ...agent("a4", "Mail_Bot%1"), role: "assistant", createdAt: 3_000 });
        expect((await store.listAgents({ limit: 10, offset: 0, search: "ASSIST" })).map((a) => a.id)).toEqual(["a4"]);
        expect((await store.listAgents({ limit: 10, offset: 0, search: "_bot%" })).map((a) => a.id)).toEqual(["a4"]);
        expect((await store.listAgents({ limit: 10, offset: 0, search: "%" })).map((a) => a.id)).toEqual(["a4"]);
        expect((await store.listAgents({ limit: 10, offset: 0, search: "a_" })).map((a) => a.id)).toEqual([]);
        expect((await store.listAgents({ limit: 1, offset: 1, search: "research" })).map((a) => a.id)).toEqual(["a2"]);
      } finally {
        await store.close();
      }
    });

    it("records tokens, revokes one and all of an agent's live tokens", async () => {
      const store = await open();
      try {
        await store.insertAgent(agent("a1"));
        await store.insertToken(token("t1", "a1"));
        await store.insertToken(token("t2", "a1"));
        await store.insertToken(token("t3", "a1", 1_500));
        expect(await store.getToken("t1")).toEqual(token("t1", "a1"));
        expect(await store.revokeToken("t1", 2_000, "test")).toBe(true);
        expect(await store.revokeToken("t1", 3_000, "again")).toBe(true);
        expect(await store.getToken("t1")).toMatchObject({ revokedAt: 2_000, revokedReason: "test" });
        expect(await store.revokeToken("nope", 2_000, "test")).toBe(false);
        expect(await store.revokeAgentTokens("a1", 2_500, "all")).toEqual(["t2"]);
        expect(await store.revokeAgentTokens("a1", 2_600, "again")).toEqual([]);
        // Reconciling instances read what was revoked since their last pass, bounded.
        expect(new Set(await store.revokedTokenIdsSince(0, 10))).toEqual(new Set(["t1", "t2"]));
        expect(await store.revokedTokenIdsSince(2_400, 10)).toEqual(["t2"]);
        expect(await store.revokedTokenIdsSince(0, 1)).toHaveLength(1);
        expect(await store.revokedTokenIdsSince(2_501, 10)).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it("uses an assertion id once, and prunes expired ones", async () => {
      const store = await open();
      try {
        expect(await store.useAssertionJti("a1", "j1", 5_000)).toBe(true);
        expect(await store.useAssertionJti("a1", "j1", 5_000)).toBe(false);
        expect(await store.useAssertionJti("a2", "j1", 5_000)).toBe(true);
        await store.pruneExpired(6_000);
        expect(await store.useAssertionJti("a1", "j1", 9_000)).toBe(true);
        const racers = await Promise.all(Array.from({ length: 10 }, () => store.useAssertionJti("a9", "race", 9_000)));
        expect(racers.filter(Boolean)).toHaveLength(1);
      } finally {
        await store.close();
      }
    });

    it("keeps meta values first-writer-wins and signing keys with retirement", async () => {
      const store = await open();
      try {
        expect(await store.setMetaIfAbsent("k", "v1")).toBe("v1");
        expect(await store.setMetaIfAbsent("k", "v2")).toBe("v1");
        expect(await store.getMeta("missing")).toBeUndefined();
        await store.setMeta("m", "one");
        await store.setMeta("m", "two");
        expect(await store.getMeta("m")).toBe("two");
        expect(await store.getMeta("k")).toBe("v1");
        await store.insertSigningKey({ kid: "k1", alg: "EdDSA", publicJwk: { x: "1" }, privateKeySealed: "{}", createdAt: 1, retiredAt: null });
        await store.retireSigningKey("k1", 7);
        expect(await store.listSigningKeys()).toEqual([{ kid: "k1", alg: "EdDSA", publicJwk: { x: "1" }, privateKeySealed: "{}", createdAt: 1, retiredAt: 7 }]);
      } finally {
        await store.close();
      }
    });

    it("numbers credential versions per tool and tracks the active one", async () => {
      const store = await open();
      try {
        const v1 = await store.insertCredentialVersion("serpapi", (v) => `sealed-${v}`, "first", 10);
        const v2 = await store.insertCredentialVersion("serpapi", (v) => `sealed-${v}`, null, 20);
        const other = await store.insertCredentialVersion("openai", (v) => `sealed-${v}`, null, 30);
        expect([v1.version, v2.version, other.version]).toEqual([1, 2, 1]);
        expect(v2.sealed).toBe("sealed-2");
        const racers = await Promise.all(Array.from({ length: 4 }, () => store.insertCredentialVersion("gmail_send", (v) => `s${v}`, null, 1)));
        expect(racers.map((r) => r.version).sort()).toEqual([1, 2, 3, 4]);
        expect((await store.listCredentialVersions("serpapi")).map((c) => c.version)).toEqual([1, 2]);
        expect(await store.getCredentialVersion("serpapi", 1)).toMatchObject({ description: "first", createdAt: 10 });
        expect(await store.getCredentialVersion("serpapi", 9)).toBeUndefined();
        await store.setActiveCredential("serpapi", 2, 40);
        await store.setActiveCredential("serpapi", 1, 50);
        expect(await store.listActiveCredentials()).toEqual([{ tool: "serpapi", version: 1, activatedAt: 50 }]);
      } finally {
        await store.close();
      }
    });

    it("writes audit records in batches and pages them newest first with filters", async () => {
      const store = await open();
      try {
        const records = Array.from({ length: 1203 }, (_, i): AuditRecord => ({
          id: `r${String(i).padStart(5, "0")}`,
          at: 1_000 + Math.floor(i / 2),
          correlationId: `c${i}`,
          agentId: i % 3 === 0 ? "a1" : "a2",
          tool: i % 2 === 0 ? "serpapi" : "openai",
          action: "x",
          decision: i % 5 === 0 ? "deny" : "allow",
          reason: i % 5 === 0 ? "scope_denied" : null,
          status: i % 5 === 0 ? 403 : 200,
          latencyMs: 1.5,
          upstreamMs: null,
          cache: "miss",
          attempts: 1,
          paramsHash: "h",
          door: i % 2 === 0 ? "rest" : "job",
          chainId: null,
          chainSeq: null,
          prevHash: null,
          hash: null,
        }));
        await store.insertAuditRecords(records);
        await store.insertAuditRecords(records.slice(0, 10)); // replays are ignored
        const all: string[] = [];
        let before: { at: number; id: string } | undefined;
        for (;;) {
          const page = await store.queryAudit({ limit: 500, ...(before ? { before } : {}) });
          all.push(...page.map((r) => r.id));
          if (page.length < 500) break;
          const last = page[page.length - 1]!;
          before = { at: last.at, id: last.id };
        }
        expect(all).toHaveLength(1203);
        expect(new Set(all).size).toBe(1203);
        expect(all[0]).toBe("r01202");
        const denied = await store.queryAudit({ limit: 1000, decision: "deny", agentId: "a1" });
        expect(denied.every((r) => r.decision === "deny" && r.agentId === "a1")).toBe(true);
        expect(denied).toHaveLength(records.filter((r) => r.decision === "deny" && r.agentId === "a1").length);
        const byDoor = await store.queryAudit({ limit: 2000, door: "job" });
        expect(byDoor).toHaveLength(records.filter((r) => r.door === "job").length);
        expect(byDoor.every((r) => r.door === "job")).toBe(true);
        const window = await store.queryAudit({ limit: 1000, from: 1_100, to: 1_110, tool: "serpapi" });
        expect(window).toHaveLength(10);
        expect(window[0]).toMatchObject({ latencyMs: 1.5, upstreamMs: null, attempts: 1, status: 200, door: "rest" });
        // Operators' changes sit beside agents' calls, apart by kind, and a correlation id finds its records.
        await store.insertAuditRecords([
          {
            ...records[0]!,
            id: "op1",
            at: 5_000,
            correlationId: "shared",
            agentId: "a1",
            tool: null,
            action: "POST /api/agents/:id/suspend",
            door: null,
            operator: "alice",
          },
          { ...records[0]!, id: "op2", at: 5_001, correlationId: "other", tool: null, action: "POST /api/credentials", door: null, operator: "bob" },
          {
            ...records[0]!,
            id: "call1",
            at: 5_002,
            correlationId: "shared",
            usage: { promptTokens: 12, completionTokens: 3_000_000_000, totalTokens: 3_000_000_012 },
          },
        ]);
        // Model tokens are stored as whole numbers beyond 32 bits; records without them read as null.
        expect((await store.queryAudit({ limit: 10, correlationId: "shared" })).map((r) => r.usage)).toEqual([
          { promptTokens: 12, completionTokens: 3_000_000_000, totalTokens: 3_000_000_012 },
          null,
        ]);
        expect((await store.queryAudit({ limit: 10, correlationId: "shared" })).map((r) => r.id)).toEqual(["call1", "op1"]);
        expect((await store.queryAudit({ limit: 10, kind: "admin" })).map((r) => [r.id, r.operator])).toEqual([
          ["op2", "bob"],
          ["op1", "alice"],
        ]);
        expect((await store.queryAudit({ limit: 10, operator: "alice" })).map((r) => r.id)).toEqual(["op1"]);
        const calls = await store.queryAudit({ limit: 2000, kind: "call" });
        expect(calls).toHaveLength(1204);
        expect(calls.every((r) => r.operator === null)).toBe(true);
      } finally {
        await store.close();
      }
    });

    it.each(["thread", "inline"] as const)(
      "writes chained audit batches through its audit writer (sqlite: %s), with the chain head, in one transaction per batch",
      async (sqlite) => {
        const store = await open();
        const writer = store.openAuditWriter({ sqlite });
        try {
          const rec = (seq: number) => ({
            id: `w${seq}`,
            at: 2_000 + seq,
            correlationId: `cw${seq}`,
            agentId: "a",
            tool: "serpapi",
            action: "search",
            decision: "allow" as const,
            reason: null,
            status: 200,
            latencyMs: 0.125 * seq,
            upstreamMs: seq % 2 ? null : 1.5,
            cache: "miss",
            attempts: 1,
            paramsHash: "p",
            door: "rest",
            operator: null,
            // An LLM call's reported tokens round-trip through the writer; other records have none.
            usage: seq % 2 ? null : { promptTokens: 10 * seq, completionTokens: seq, totalTokens: 11 * seq },
            chainId: "gw-test",
            chainSeq: seq,
            prevHash: `h${seq - 1}`,
            hash: `h${seq}`,
          });
          const head = (seq: number) => ({ chainId: "gw-test", startedAt: 1, headSeq: seq, headHash: `h${seq}`, headMac: `m${seq}`, updatedAt: 10 + seq });
          await writer.write([rec(1), rec(2)], head(2));
          await writer.write([rec(3)], head(3));
          await writer.write([rec(4), rec(5)], head(5));
          await writer.write([rec(5)], head(5)); // a retried batch that had been committed: ignored
          expect(await store.listAuditChains()).toEqual([{ chainId: "gw-test", startedAt: 1, headSeq: 5, headHash: "h5", headMac: "m5", updatedAt: 15 }]);
          expect(await store.auditChainIds()).toEqual(["gw-test"]);
          const page = await store.auditChainRecords("gw-test", 1, 3);
          expect(page.map((r) => r.chainSeq)).toEqual([2, 3, 4]);
          expect(page[0]).toEqual(rec(2));
          expect(page.map((r) => r.usage)).toEqual([
            { promptTokens: 20, completionTokens: 2, totalTokens: 22 },
            null,
            { promptTokens: 40, completionTokens: 4, totalTokens: 44 },
          ]);
          expect(await store.countUnchainedAudit()).toBe(0);
        } finally {
          await writer.close();
          await store.close();
        }
      },
    );

    // About the SQL driver beneath the port (both backends share it): transactions are isolated.
    it("rolls back a failed transaction without affecting statements outside it", async () => {
      const store = await open();
      try {
        await store.insertAgent(agent("a1"));
        const failing = store.driver.transaction(async (tx) => {
          await tx.run(`UPDATE agents SET role = 'changed' WHERE id = $1`, ["a1"]);
          throw new Error("boom");
        });
        const outside = store.insertAgent(agent("a2"));
        await expect(failing).rejects.toThrow("boom");
        await outside;
        expect((await store.getAgent("a1"))?.role).toBe("researcher");
        expect(await store.getAgent("a2")).toBeDefined();
      } finally {
        await store.close();
      }
    });

    it("keeps policies with numbered versions, a unique name, and deletes them", async () => {
      const store = await open();
      try {
        expect(await store.listPolicies()).toEqual([]);
        await store.insertPolicy({ id: "p1", name: "alpha", spec: '{"v":1}', hash: "h1", at: 10 });
        await store.insertPolicy({ id: "p2", name: "beta", spec: '{"v":1}', hash: "h2", at: 11 });
        await expect(store.insertPolicy({ id: "p3", name: "alpha", spec: "{}", hash: "h3", at: 12 })).rejects.toBeInstanceOf(UniqueViolation);
        expect(await store.addPolicyVersion({ id: "p1", name: "alpha", spec: '{"v":2}', hash: "h1b", at: 20 })).toBe(2);
        expect(await store.addPolicyVersion({ id: "missing", name: "x", spec: "{}", hash: "h", at: 20 })).toBeUndefined();
        await expect(store.addPolicyVersion({ id: "p2", name: "alpha", spec: "{}", hash: "h", at: 21 })).rejects.toBeInstanceOf(UniqueViolation);
        const listed = await store.listPolicies();
        expect(listed.map((p) => [p.id, p.name, p.version, p.spec, p.hash])).toEqual([
          ["p1", "alpha", 2, '{"v":2}', "h1b"],
          ["p2", "beta", 1, '{"v":1}', "h2"],
        ]);
        expect(listed[0]).toMatchObject({ createdAt: 10, updatedAt: 20 });
        expect((await store.getPolicyVersions("p1")).map((v) => [v.version, v.spec, v.hash, v.createdAt])).toEqual([
          [1, '{"v":1}', "h1", 10],
          [2, '{"v":2}', "h1b", 20],
        ]);
        expect(await store.getPolicyVersions("missing")).toEqual([]);
        expect(await store.deletePolicy("p1")).toBe(true);
        expect(await store.deletePolicy("p1")).toBe(false);
        expect((await store.listPolicies()).map((p) => p.id)).toEqual(["p2"]);
        expect(await store.getPolicyVersions("p1")).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it("runs one-time steps exclusively, answers ping, and refuses work once closed", async () => {
      const store = await open();
      let inside = 0;
      let overlapped = false;
      const step = () =>
        store.exclusive(async () => {
          if (++inside > 1) overlapped = true;
          await store.getMeta("x");
          inside--;
          return "done";
        });
      expect(await Promise.all([step(), step(), step()])).toEqual(["done", "done", "done"]);
      expect(overlapped).toBe(false);
      await expect(store.ping()).resolves.toBeUndefined();
      await store.close();
      await expect(store.getAgent("a1")).rejects.toThrow();
    });

    it("exercises every method of every slice (no skips)", () => {
      const all = Object.values(STORE_SLICES).flat();
      expect(exhaustive).toBe(true);
      expect(all.filter((m) => !called.has(m))).toEqual([]);
    });
  });
}
