import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("agents API", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t.close());

  const admin = (path: string, body?: unknown, key?: string) =>
    http(`${t.url}${path}`, { ...(body === undefined ? {} : { body }), headers: { authorization: `Bearer ${key ?? t.adminKey}` } });

  it("refuses admin routes without the admin key, or with a wrong one", async () => {
    const none = await http(`${t.url}/api/agents`);
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe("admin_unauthorized");
    const wrong = await admin("/api/agents", undefined, t.adminKey.slice(0, -1) + "x");
    expect(wrong.status).toBe(401);
  });

  it("registers an agent with its own public key as PEM or JWK; the private key never travels", async () => {
    const pem = generateAgentKeyPair("EdDSA");
    const r = await admin("/api/agents", { name: "pem-agent", role: "researcher", publicKey: pem.publicKeyPem });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ name: "pem-agent", role: "researcher", status: "active", keyAlgorithm: "EdDSA" });
    expect(r.json.id).toMatch(/^agt_[0-9a-f]{32}$/);
    expect(r.json.privateKey).toBeUndefined();

    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const jwk = publicKey.export({ format: "jwk" });
    const j = await admin("/api/agents", { name: "jwk-agent", role: "researcher", publicKey: jwk });
    expect(j.status).toBe(201);
    expect(j.json.keyAlgorithm).toBe("ES256");
  });

  it("generates a key pair when none is sent and returns the private key once, which then works", async () => {
    const r = await admin("/api/agents", { name: "generated", role: "writer" });
    expect(r.status).toBe(201);
    expect(r.json.privateKey).toContain("BEGIN PRIVATE KEY");
    expect(r.headers.get("cache-control")).toBe("no-store");
    const again = await admin(`/api/agents/${r.json.id}`);
    expect(again.json.privateKey).toBeUndefined();
    const client = new AgentClient({ baseUrl: t.url, agentId: r.json.id, privateKey: r.json.privateKey, scopes: ["openai:chat"] });
    expect((await client.whoami()).agentId).toBe(r.json.id);
  });

  it.each([
    [
      { name: "weak-rsa", role: "r", publicKey: generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "pem", type: "spki" }) },
      "key_invalid",
      /2048/,
    ],
    [
      { name: "p384", role: "r", publicKey: generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({ format: "pem", type: "spki" }) },
      "key_invalid",
      /P-256/,
    ],
    [{ name: "private-jwk", role: "r", publicKey: generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" }) }, "key_invalid", /private/],
    [{ name: "garbage-key", role: "r", publicKey: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" }, "key_invalid", /readable/],
    [{ name: "bad name with spaces", role: "r" }, "invalid_request", /name/],
    [{ name: "ok-name", role: "Bad Role" }, "invalid_request", /role/],
    [{ role: "r" }, "invalid_request", /name/],
    [{ name: "x", role: "r", surprise: true }, "invalid_request", /additional/],
  ])("refuses a bad registration %#", async (body, code, message) => {
    const r = await admin("/api/agents", body);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe(code);
    expect(JSON.stringify(r.json.error)).toMatch(message);
  });

  it("refuses a duplicate name with 409 and an unknown id with 404", async () => {
    await admin("/api/agents", { name: "dup", role: "r" });
    const dup = await admin("/api/agents", { name: "dup", role: "r" });
    expect(dup.status).toBe(409);
    expect(dup.json.error.code).toBe("agent_exists");
    for (const path of [
      "/api/agents/agt_missing",
      "/api/agents/agt_missing/suspend",
      "/api/agents/agt_missing/activate",
      "/api/agents/agt_missing/revoke-tokens",
    ]) {
      const r = await admin(path, path.endsWith("missing") ? undefined : {});
      expect(r.status, path).toBe(404);
      expect(r.json.error.code).toBe("agent_not_found");
    }
  });

  it("lists agents with paging and suspends and activates them", async () => {
    const created = await admin("/api/agents", { name: "lister", role: "r" });
    const list = await admin("/api/agents?limit=1000");
    expect(list.json.agents.some((a: { id: string }) => a.id === created.json.id)).toBe(true);
    const page = await admin("/api/agents?limit=1&offset=1");
    expect(page.json.agents).toHaveLength(1);
    expect((await admin("/api/agents?limit=abc")).status).toBe(400);
    expect((await admin(`/api/agents/${created.json.id}/suspend`, {})).json.status).toBe("suspended");
    expect((await admin(`/api/agents/${created.json.id}/activate`, {})).json.status).toBe("active");
  });
});
