import { describe, expect, it } from "vitest";
import { UniqueViolation, type AgentRecord, type Store, type TokenRecord } from "../../src/store/index.js";

/** The storage port's contract: every backend must pass it. `open` gives a fresh, migrated store. */
export function storeContract(name: string, open: () => Promise<Store>) {
  describe(`store contract: ${name}`, () => {
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
        expect(await store.setAgentStatus("missing", "active", 1)).toBeUndefined();
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
        expect(new Set(await store.listRevokedTokenIds(0, 2_600))).toEqual(new Set(["t1", "t2"]));
        expect(await store.listRevokedTokenIds(2_400, 2_600)).toEqual(["t2"]);
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
        const records = Array.from({ length: 1203 }, (_, i) => ({
          id: `r${String(i).padStart(5, "0")}`,
          at: 1_000 + Math.floor(i / 2),
          correlationId: `c${i}`,
          agentId: i % 3 === 0 ? "a1" : "a2",
          tool: i % 2 === 0 ? "serpapi" : "openai",
          action: "x",
          decision: (i % 5 === 0 ? "deny" : "allow") as "deny" | "allow",
          reason: i % 5 === 0 ? "scope_denied" : null,
          status: i % 5 === 0 ? 403 : 200,
          latencyMs: 1.5,
          upstreamMs: null,
          cache: "miss",
          attempts: 1,
          paramsHash: "h",
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
        const window = await store.queryAudit({ limit: 1000, from: 1_100, to: 1_110, tool: "serpapi" });
        expect(window).toHaveLength(10);
        expect(window[0]).toMatchObject({ latencyMs: 1.5, upstreamMs: null, attempts: 1, status: 200 });
      } finally {
        await store.close();
      }
    });

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
  });
}
