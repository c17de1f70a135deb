import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";

/** Agent ids cannot be probed on POST /api/tokens: proof of possession comes before anything about the agent. */
describe("token requests do not reveal agents", () => {
  let t: TestGateway;
  let active: { id: string; key: string };
  let suspended: { id: string; key: string };
  beforeAll(async () => {
    t = await startTestGateway();
    const make = async (name: string) => {
      const pair = generateAgentKeyPair("EdDSA");
      const agent = await t.admin.createAgent({ name, role: "researcher", publicKey: pair.publicKeyPem });
      return { id: agent.id, key: pair.privateKeyPem };
    };
    active = await make("probe-active");
    suspended = await make("probe-suspended");
    await t.admin.raw("POST", `/api/agents/${suspended.id}/suspend`, {});
  });
  afterAll(async () => t.close());

  const assertionFor = (agentId: string, privateKey: string, options: { audience?: string } = {}) =>
    new AgentClient({ baseUrl: t.url, agentId, privateKey, scopes: ["serpapi:search"] }).signAssertion(options);
  const request = (agentId: string, assertion: string) => http(`${t.url}/api/tokens`, { body: { agentId, assertion, scopes: ["serpapi:search"] } });

  it("answers a suspended agent's unproven request like any bad assertion (not 403)", async () => {
    const stranger = generateAgentKeyPair("EdDSA").privateKeyPem;
    const r = await request(suspended.id, await assertionFor(suspended.id, stranger));
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe("assertion_invalid");
  });

  it("tells a suspended agent that proved possession of its key that it is suspended", async () => {
    const r = await request(suspended.id, await assertionFor(suspended.id, suspended.key));
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe("agent_suspended");
  });

  it("reads the store for a known agent exactly as for an unknown one (no cache-timing difference)", async () => {
    const stranger = generateAgentKeyPair("EdDSA").privateKeyPem;
    const reads = vi.spyOn(t.gateway.store, "getAgent");
    try {
      await request(active.id, await assertionFor(active.id, stranger)); // active is cached by now
      const known = reads.mock.calls.length;
      reads.mockClear();
      await request("agt_11111111111111111111111111111111", await assertionFor("agt_11111111111111111111111111111111", stranger));
      expect(reads.mock.calls.length).toBe(known);
      expect(known).toBe(1);
    } finally {
      reads.mockRestore();
    }
  });

  it("gives one message for every assertion_invalid, whatever the cause; the cause goes to the server log", async () => {
    const stranger = generateAgentKeyPair("EdDSA").privateKeyPem;
    const cases = {
      unknownAgent: await request("agt_00000000000000000000000000000000", await assertionFor("agt_00000000000000000000000000000000", stranger)),
      wrongKey: await request(active.id, await assertionFor(active.id, stranger)),
      otherAlgorithm: await request(active.id, await assertionFor(active.id, generateAgentKeyPair("ES256").privateKeyPem)),
      wrongAudience: await request(active.id, await assertionFor(active.id, active.key, { audience: "urn:elsewhere" })),
      otherAgentsAssertion: await request(active.id, await assertionFor(suspended.id, suspended.key)),
      notAJws: await request(active.id, "not.a.jws"),
      suspendedWrongKey: await request(suspended.id, await assertionFor(suspended.id, stranger)),
    };
    const answers = Object.entries(cases).map(([name, r]) => ({
      name,
      status: r.status,
      code: r.json.error.code,
      message: r.json.error.message,
      details: r.json.error.details,
    }));
    const first = answers[0]!;
    for (const a of answers) {
      expect({ ...a, name: first.name }, a.name).toEqual({ ...first, name: first.name });
    }
    expect(first).toMatchObject({ status: 401, code: "assertion_invalid", details: undefined });
    // The reason is for the operator, in the request's log line.
    const wrongKeyLine = t.logs.map((l) => JSON.parse(l)).find((l) => l.correlationId === cases.wrongKey.json.error.correlationId && l.msg === "request");
    expect(wrongKeyLine.errorCode).toBe("assertion_invalid");
    expect(wrongKeyLine.errorDetail).toMatch(/signature/);
  });
});

describe("an agent's public key must be public", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t.close());

  let n = 0;
  const register = (publicKey: unknown) =>
    http(`${t.url}/api/agents`, { body: { name: `key-check-${++n}`, role: "researcher", publicKey }, headers: { authorization: `Bearer ${t.adminKey}` } });

  const ed = generateKeyPairSync("ed25519");
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privateForms: [string, unknown][] = [
    ["PKCS#8 PEM (Ed25519)", ed.privateKey.export({ format: "pem", type: "pkcs8" }).toString()],
    ["PKCS#8 PEM (P-256)", ec.privateKey.export({ format: "pem", type: "pkcs8" }).toString()],
    ["SEC1 PEM (P-256)", ec.privateKey.export({ format: "pem", type: "sec1" }).toString()],
    ["PKCS#1 PEM (RSA)", rsa.privateKey.export({ format: "pem", type: "pkcs1" }).toString()],
    ["private JWK as a string (Ed25519)", JSON.stringify(ed.privateKey.export({ format: "jwk" }))],
    ["private JWK as a string (RSA)", JSON.stringify(rsa.privateKey.export({ format: "jwk" }))],
    ["private JWK object (P-256)", ec.privateKey.export({ format: "jwk" })],
    ["RSA JWK with only p and q", { ...rsa.publicKey.export({ format: "jwk" }), p: (rsa.privateKey.export({ format: "jwk" }) as { p: string }).p }],
  ];

  it.each(privateForms)("refuses a %s with key_invalid", async (_name, key) => {
    const r = await register(key);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe("key_invalid");
    expect(r.json.error.message).toMatch(/private/);
  });

  it("still accepts the public halves (SPKI PEM, JWK object, JWK string)", async () => {
    for (const key of [
      ed.publicKey.export({ format: "pem", type: "spki" }).toString(),
      ec.publicKey.export({ format: "jwk" }),
      JSON.stringify(rsa.publicKey.export({ format: "jwk" })),
    ]) {
      const r = await register(key);
      expect(r.status).toBe(201);
    }
  });
});
