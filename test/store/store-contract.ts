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
