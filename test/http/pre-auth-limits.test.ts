import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { clientAddressKey } from "../../src/http/pre-auth-limits.js";
import { http, startTestGateway, TestClock, type TestGateway } from "../helpers/gateway.js";
import { REDIS_URL, redisAvailable } from "../helpers/services.js";

const LIMITS = { TOKEN_REQUESTS_PER_MINUTE_PER_ADDRESS: "6", TOKEN_REQUESTS_PER_MINUTE_PER_AGENT: "3", ANONYMOUS_CALLS_PER_MINUTE_PER_ADDRESS: "4" };

async function registerAgent(t: TestGateway, name: string, now: () => number) {
  const pair = generateAgentKeyPair("EdDSA");
  const agent = await t.admin.createAgent({ name, role: "researcher", publicKey: pair.publicKeyPem });
  return { agentId: agent.id, client: new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search"], now }) };
}

/** A token request whose assertion is signed by the wrong key: refused after verification, but counted. */
const badTokenRequest = async (t: TestGateway, agentId: string) => {
  const impostor = new AgentClient({ baseUrl: t.url, agentId, privateKey: generateAgentKeyPair("EdDSA").privateKeyPem, scopes: ["serpapi:search"] });
  return http(`${t.url}/api/tokens`, { body: { agentId, assertion: await impostor.signAssertion(), scopes: ["serpapi:search"] } });
};

function expectRateLimited(r: Awaited<ReturnType<typeof http>>) {
  expect(r.status).toBe(429);
  expect(r.json.error.code).toBe("rate_limited");
  expect(r.json.error.correlationId).toBe(r.headers.get("x-correlation-id"));
  expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

describe("limits before authentication (in-process)", () => {
  const clock = new TestClock();
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(LIMITS, { now: clock.now });
  });
  afterAll(async () => t.close());

  it("limits token requests per agent id, then per client address, and refills with time", async () => {
    const a = await registerAgent(t, "limited-a", clock.now);
    const b = await registerAgent(t, "limited-b", clock.now);
    for (let i = 0; i < 3; i++) expect((await badTokenRequest(t, a.agentId)).status).toBe(401);
    expectRateLimited(await badTokenRequest(t, a.agentId)); // 4th for agent a
    // Agent b has its own budget, but the address has one request left after b's first two.
    expect((await a.client.issueToken().catch((e) => e)).status).toBe(429);
    expect((await b.client.issueToken()).token).toBeTypeOf("string");
    expectRateLimited(await badTokenRequest(t, b.agentId)); // the address's 7th: refused
    clock.advance(60_000);
    expect((await a.client.issueToken()).token).toBeTypeOf("string");
  });

  it("limits proxy calls without a credential per client address; calls with a token are left to the road", async () => {
    clock.advance(60_000);
    const anonymous = () => http(`${t.url}/api/proxy`, { body: { tool: "serpapi", action: "search", params: { q: "x" } } });
    for (let i = 0; i < 4; i++) expect((await anonymous()).json.error.code).toBe("token_missing");
    expectRateLimited(await anonymous());
    const agent = await registerAgent(t, "limited-caller", clock.now);
    const withToken = await http(`${t.url}/api/proxy`, {
      body: { tool: "serpapi", action: "search", params: { q: "x" } },
      headers: { authorization: `Bearer ${await agent.client.token()}` },
    });
    expect(withToken.status).not.toBe(429);
  });

  it("limits the OpenAI-compatible door the same way, answering in OpenAI's error shape", async () => {
    clock.advance(60_000);
    const models = () => http(`${t.url}/v1/models`);
    for (let i = 0; i < 4; i++) expect((await models()).status).toBe(401);
    const refused = await models();
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe("rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("ignores X-Forwarded-For unless TRUST_PROXY says whose to believe", async () => {
    clock.advance(60_000);
    const spoofed = (n: number) =>
      http(`${t.url}/api/proxy`, { body: { tool: "serpapi", action: "search", params: { q: "x" } }, headers: { "x-forwarded-for": `198.51.100.${n}` } });
    for (let i = 0; i < 4; i++) expect((await spoofed(i)).status).toBe(401);
    expectRateLimited(await spoofed(99));

    const behindProxy = await startTestGateway({ ...LIMITS, TRUST_PROXY: "127.0.0.1/32" }, { now: clock.now });
    try {
      const via = (client: string) =>
        http(`${behindProxy.url}/api/proxy`, { body: { tool: "serpapi", action: "search", params: { q: "x" } }, headers: { "x-forwarded-for": client } });
      for (let i = 0; i < 4; i++) expect((await via("198.51.100.1")).status).toBe(401);
      expectRateLimited(await via("198.51.100.1"));
      expect((await via("198.51.100.2")).status).toBe(401);
    } finally {
      await behindProxy.close();
    }
  });

  it("keys IPv6 callers by their /64 and IPv4-mapped addresses as IPv4", () => {
    expect(clientAddressKey("2001:db8:1:2:aaaa::1")).toBe(clientAddressKey("2001:db8:1:2:ffff::9"));
    expect(clientAddressKey("2001:db8:1:3::1")).not.toBe(clientAddressKey("2001:db8:1:2::1"));
    expect(clientAddressKey("::ffff:192.0.2.7")).toBe(clientAddressKey("192.0.2.7"));
    expect(clientAddressKey("192.0.2.7")).not.toBe(clientAddressKey("192.0.2.8"));
  });
});

const redisUp = await redisAvailable();
describe.runIf(redisUp)("limits before authentication, shared through Redis", () => {
  const clock = new TestClock();
  const env = { ...LIMITS, REDIS_URL, REDIS_PREFIX: `preauth-${randomBytes(4).toString("hex")}:` };
  let one: TestGateway;
  let two: TestGateway;
  beforeAll(async () => {
    one = await startTestGateway(env, { now: clock.now });
    two = await startTestGateway(env, { now: clock.now });
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  it("counts token requests for one agent id on either instance against one budget", async () => {
    clock.advance(60_000);
    const agentId = "agt_shared0000000000000000000000000";
    const attempt = async (t: TestGateway) => http(`${t.url}/api/tokens`, { body: { agentId, assertion: "not.a.jws", scopes: ["serpapi:search"] } });
    for (const t of [one, two, one]) expect((await attempt(t)).json.error.code).toBe("assertion_invalid");
    expectRateLimited(await attempt(two));
  });

  it("counts anonymous calls to either instance against one budget", async () => {
    const anonymous = (t: TestGateway) => http(`${t.url}/api/proxy`, { body: { tool: "serpapi", action: "search", params: { q: "x" } } });
    for (const t of [one, two, one, two]) expect((await anonymous(t)).status).toBe(401);
    expectRateLimited(await anonymous(one));
    expectRateLimited(await anonymous(two));
  });
});
