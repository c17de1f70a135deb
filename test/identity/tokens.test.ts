import { generateKeyPairSync, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { base64url, SignJWT } from "jose";
import { AgentClient, GatewayClientError } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { http, startTestGateway, TestClock, type TestGateway } from "../helpers/gateway.js";

const ISSUER = "urn:4runr:gateway";

describe("tokens: proof of possession, verification and every refusal", () => {
  const clock = new TestClock();
  let t: TestGateway;
  let agentId: string;
  let agentKey: string;
  let client: AgentClient;

  beforeAll(async () => {
    t = await startTestGateway({}, { now: clock.now });
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await t.admin.createAgent({ name: "tok-agent", role: "researcher", publicKey: pair.publicKeyPem });
    agentId = agent.id;
    agentKey = pair.privateKeyPem;
    client = new AgentClient({ baseUrl: t.url, agentId, privateKey: agentKey, scopes: ["serpapi:search"], now: clock.now });
  });
  afterAll(async () => t.close());

  const self = (token: string | undefined) => http(`${t.url}/api/tokens/self`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

  async function expectRefusal(token: string | undefined, code: string, status = 401) {
    const r = await self(token);
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(typeof r.json.error.correlationId).toBe("string");
    expect(r.headers.get("x-correlation-id")).toBe(r.json.error.correlationId);
    return r;
  }

  it("issues a token for a valid assertion and verifies it", async () => {
    const issued = await client.issueToken({ scopes: ["serpapi:search", "http_fetch:*", "serpapi:search"], intent: "research" });
    expect(issued.scopes).toEqual(["http_fetch:*", "serpapi:search"]);
    const r = await self(issued.token);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ agentId, role: "researcher", scopes: ["http_fetch:*", "serpapi:search"], intent: "research", refreshRecommended: false });
    expect(Date.parse(issued.expiresAt) - clock.now()).toBe(15 * 60 * 1000);
  });

  it("publishes the signing key in the JWKS", async () => {
    const r = await http(`${t.url}/.well-known/jwks.json`);
    expect(r.status).toBe(200);
    expect(r.json.keys).toHaveLength(1);
    expect(r.json.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(r.json.keys[0].d).toBeUndefined();
  });

  it("refuses a request without a token", async () => {
    await expectRefusal(undefined, "token_missing");
  });

  it("refuses garbage", async () => {
    await expectRefusal("not-a-jwt", "token_invalid");
  });

  it("refuses an oversized token", async () => {
    const issued = await client.issueToken();
    await expectRefusal(issued.token + "A".repeat(9000), "token_too_large");
  });

  it("refuses a tampered token (payload edited, signature kept)", async () => {
    const issued = await client.issueToken();
    const [h, p, s] = issued.token.split(".");
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
    payload.scp = ["*:*"];
    const tampered = `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`;
    await expectRefusal(tampered, "token_invalid");
  });

  it("refuses a forged token signed by a foreign key under the gateway's kid", async () => {
    const jwks = (await http(`${t.url}/.well-known/jwks.json`)).json;
    const foreign = generateKeyPairSync("ed25519").privateKey;
    const forged = await new SignJWT({ scp: ["*:*"] })
      .setProtectedHeader({ alg: "EdDSA", kid: jwks.keys[0].kid, typ: "at+jwt" })
      .setIssuer(ISSUER)
      .setAudience(ISSUER)
      .setSubject(agentId)
      .setJti(randomUUID())
      .setIssuedAt(Math.floor(clock.now() / 1000))
      .setNotBefore(Math.floor(clock.now() / 1000))
      .setExpirationTime(Math.floor(clock.now() / 1000) + 600)
      .sign(foreign);
    await expectRefusal(forged, "token_invalid");
  });

  it("refuses a token signed by another agent's key", async () => {
    const other = generateAgentKeyPair("EdDSA");
    await t.admin.createAgent({ name: "other-agent", role: "researcher", publicKey: other.publicKeyPem });
    const forged = await new SignJWT({ scp: ["*:*"] })
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt" })
      .setIssuer(ISSUER)
      .setAudience(ISSUER)
      .setSubject(agentId)
      .setJti(randomUUID())
      .setIssuedAt(Math.floor(clock.now() / 1000))
      .setExpirationTime(Math.floor(clock.now() / 1000) + 600)
      .sign((await import("node:crypto")).createPrivateKey(other.privateKeyPem));
    await expectRefusal(forged, "token_invalid");
  });

  it("refuses alg: none", async () => {
    const issued = await client.issueToken();
    const [, p] = issued.token.split(".");
    const none = `${base64url.encode(JSON.stringify({ alg: "none", typ: "at+jwt" }))}.${p}.`;
    const r = await expectRefusal(none, "token_invalid");
    expect(r.json.error.message).toMatch(/algorithm/);
  });

  it("refuses HS256 signed with the gateway's public key as the secret (algorithm confusion)", async () => {
    const jwks = (await http(`${t.url}/.well-known/jwks.json`)).json;
    const issued = await client.issueToken();
    const payload = JSON.parse(Buffer.from(issued.token.split(".")[1]!, "base64url").toString());
    const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
    const confused = await new SignJWT(payload).setProtectedHeader({ alg: "HS256", kid: jwks.keys[0].kid, typ: "at+jwt" }).sign(secret);
    const secret2 = Buffer.from(jwks.keys[0].x, "base64url");
    const confused2 = await new SignJWT(payload).setProtectedHeader({ alg: "HS256", kid: jwks.keys[0].kid, typ: "at+jwt" }).sign(secret2);
    await expectRefusal(confused, "token_invalid");
    await expectRefusal(confused2, "token_invalid");
  });

  it("refuses an expired token and recommends refresh near expiry", async () => {
    const issued = await client.issueToken({ ttlSeconds: 100 });
    clock.advance(85_000);
    const near = await self(issued.token);
    expect(near.status).toBe(200);
    expect(near.json.refreshRecommended).toBe(true);
    expect(near.headers.get("x-token-refresh")).toBe("recommended");
    clock.advance(60_000); // past exp + 30 s skew
    await expectRefusal(issued.token, "token_expired");
  });

  it("refuses a token that is not yet valid", async () => {
    const issued = await client.issueToken({ ttlSeconds: 600 });
    clock.advance(-120_000); // the verifier's clock is now 2 minutes before nbf (skew is 30 s)
    try {
      await expectRefusal(issued.token, "token_not_yet_valid");
    } finally {
      clock.advance(120_000);
    }
  });

  it("refuses a revoked token on the very next request", async () => {
    const issued = await client.issueToken();
    expect((await self(issued.token)).status).toBe(200);
    await t.admin.revokeToken(issued.tokenId);
    await expectRefusal(issued.token, "token_revoked");
  });

  it("revokes all of an agent's tokens", async () => {
    const a = await client.issueToken();
    const b = await client.issueToken();
    const r = await t.admin.revokeAgentTokens(agentId);
    expect(r.revoked).toBeGreaterThanOrEqual(2);
    await expectRefusal(a.token, "token_revoked");
    await expectRefusal(b.token, "token_revoked");
  });

  it("refuses tokens of a suspended agent, and accepts them again once re-activated", async () => {
    const issued = await client.issueToken();
    await t.admin.suspendAgent(agentId);
    await expectRefusal(issued.token, "agent_suspended", 403);
    await expect(client.issueToken()).rejects.toMatchObject({ code: "agent_suspended", status: 403 });
    await t.admin.activateAgent(agentId);
    expect((await self(issued.token)).status).toBe(200);
  });

  it("catches a provenance mismatch: the gateway's own signature on a token it never issued", async () => {
    const signer = t.gateway.keyring.current();
    const nowS = Math.floor(clock.now() / 1000);
    const minted = await new SignJWT({ scp: ["*:*"] })
      .setProtectedHeader({ alg: "EdDSA", kid: signer.kid, typ: "at+jwt" })
      .setIssuer(ISSUER)
      .setAudience(ISSUER)
      .setSubject(agentId)
      .setJti(randomUUID())
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setExpirationTime(nowS + 600)
      .sign(signer.privateKey);
    await expectRefusal(minted, "token_provenance_mismatch");

    // Same id as a real token, different payload, valid signature.
    const issued = await client.issueToken();
    const reminted = await new SignJWT({ scp: ["*:*"] })
      .setProtectedHeader({ alg: "EdDSA", kid: signer.kid, typ: "at+jwt" })
      .setIssuer(ISSUER)
      .setAudience(ISSUER)
      .setSubject(agentId)
      .setJti(issued.tokenId)
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setExpirationTime(nowS + 600)
      .sign(signer.privateKey);
    await expectRefusal(reminted, "token_provenance_mismatch");
  });

  describe("assertions", () => {
    const post = (body: unknown) => http(`${t.url}/api/tokens`, { body });

    it("refuses a replayed assertion", async () => {
      const assertion = await client.signAssertion();
      const first = await post({ agentId, assertion, scopes: ["serpapi:search"] });
      expect(first.status).toBe(201);
      const again = await post({ agentId, assertion, scopes: ["serpapi:search"] });
      expect(again.status).toBe(401);
      expect(again.json.error.code).toBe("assertion_replayed");
    });

    it("refuses an expired assertion", async () => {
      const assertion = await client.signAssertion({ expiresInSeconds: 10 });
      clock.advance(60_000);
      try {
        const r = await post({ agentId, assertion, scopes: ["serpapi:search"] });
        expect(r.json.error.code).toBe("assertion_expired");
      } finally {
        clock.advance(-60_000);
      }
    });

    it("refuses an assertion that claims more than five minutes", async () => {
      const r = await post({ agentId, assertion: await client.signAssertion({ expiresInSeconds: 3600 }), scopes: ["serpapi:search"] });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe("assertion_lifetime_too_long");
    });

    it("refuses an assertion for another audience", async () => {
      const r = await post({ agentId, assertion: await client.signAssertion({ audience: "urn:someone-else" }), scopes: ["serpapi:search"] });
      expect(r.json.error.code).toBe("assertion_invalid");
    });

    it("refuses an assertion signed by a key that is not the agent's", async () => {
      const impostor = new AgentClient({
        baseUrl: t.url,
        agentId,
        privateKey: generateAgentKeyPair("EdDSA").privateKeyPem,
        scopes: ["serpapi:search"],
        now: clock.now,
      });
      const r = await post({ agentId, assertion: await impostor.signAssertion(), scopes: ["serpapi:search"] });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe("assertion_invalid");
    });

    it("answers an unknown agent exactly like a bad signature", async () => {
      const r = await post({ agentId: "agt_nope", assertion: await client.signAssertion(), scopes: ["serpapi:search"] });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe("assertion_invalid");
    });

    it("validates scopes and ttl", async () => {
      const bad = await post({ agentId, assertion: await client.signAssertion(), scopes: ["Serp API"] });
      expect(bad.status).toBe(400);
      expect(bad.json.error.code).toBe("invalid_request");
      expect(bad.json.error.message).toContain("scopes[0]");
      const ttl = await post({ agentId, assertion: await client.signAssertion(), scopes: ["serpapi:search"], ttlSeconds: 999_999 });
      expect(ttl.status).toBe(400);
      expect(ttl.json.error.message).toContain("ttlSeconds");
      const missing = await post({ agentId, scopes: ["serpapi:search"] });
      expect(missing.status).toBe(400);
    });
  });

  it("works with ECDSA P-256 and RSA agent keys too", async () => {
    for (const alg of ["ES256", "RS256"] as const) {
      const pair = generateAgentKeyPair(alg);
      const agent = await t.admin.createAgent({ name: `agent-${alg}`, role: "writer", publicKey: pair.publicKeyPem });
      expect(agent.keyAlgorithm).toBe(alg);
      const c = new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["openai:chat"], now: clock.now });
      expect((await c.whoami()).agentId).toBe(agent.id);
    }
  });

  it("keeps tokens signed by a rotated key valid, and signs new ones with the new key", async () => {
    const before = await client.issueToken();
    const { kid } = await t.admin.rotateKeys();
    const after = await client.issueToken();
    expect(JSON.parse(Buffer.from(after.token.split(".")[0]!, "base64url").toString()).kid).toBe(kid);
    expect((await self(before.token)).status).toBe(200);
    expect((await self(after.token)).status).toBe(200);
    const jwks = (await http(`${t.url}/.well-known/jwks.json`)).json;
    expect(jwks.keys.length).toBe(2);
  });

  it("the client refreshes its cached token after 80 % of the lifetime", async () => {
    const c = new AgentClient({ baseUrl: t.url, agentId, privateKey: agentKey, scopes: ["serpapi:search"], ttlSeconds: 100, now: clock.now });
    const first = await c.token();
    expect(await c.token()).toBe(first);
    clock.advance(81_000);
    const second = await c.token();
    expect(second).not.toBe(first);
    await expect(
      new AgentClient({ baseUrl: t.url, agentId: "agt_nope", privateKey: agentKey, scopes: ["x:y"], now: clock.now }).token(),
    ).rejects.toBeInstanceOf(GatewayClientError);
  });

  it("never writes a token or assertion into the logs", async () => {
    const issued = await client.issueToken();
    await self(issued.token);
    const all = t.logs.join("");
    expect(all).not.toContain(issued.token);
    expect(all).not.toContain(issued.token.split(".")[2]!);
  });
});
