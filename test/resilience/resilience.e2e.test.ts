import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { http, startTestGateway, TestClock, type TestGateway } from "../helpers/gateway.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

async function outcome(p: Promise<{ meta: Record<string, unknown> }>) {
  try {
    const r = await p;
    return { ok: true as const, meta: r.meta };
  } catch (e) {
    return {
      ok: false as const,
      code: (e as GatewayClientError).code,
      status: (e as GatewayClientError).status,
      attempts: (e as GatewayClientError).details?.attempts,
      message: (e as GatewayClientError).message,
    };
  }
}

describe("retries and cache keep an idempotent tool answering under 30 % timeouts + 25 % 500s", () => {
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    t = await startTestGateway({
      CHAOS: JSON.stringify({ serpapi: { timeout: 0.3, error500: 0.25 } }),
      // The same faults every run: the rates below are about the gateway, not the dice.
      CHAOS_SEED: "20261130",
      // Long enough that a busy CI host's own stalls are not taken for the injected timeouts (150 ms
      // once turned enough genuine answers into timeouts to pull the retry success down to 60 %).
      UPSTREAM_TIMEOUT_MS: "300",
      RETRY_MAX_ATTEMPTS: "4",
      RETRY_BASE_MS: "5",
      RETRY_MAX_DELAY_MS: "40",
      RETRY_BUDGET_PERCENT: "300",
      BREAKER_FAILURE_PERCENT: "90",
      // The breaker counts every attempt (55 % of them fail here): with a handful of calls, an early
      // streak of failures could open it and half-open probes (all must pass) rarely close it again.
      // This test is about retries and the cache, so the breaker needs a real sample first.
      BREAKER_MIN_CALLS: "100",
      POLICY_DEFAULTS: "off",
    });
    await allowEverything(t);
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t));
  });
  afterAll(async () => t.close());

  it("measures the client-side success rate and the retry success rate", async () => {
    const results: Awaited<ReturnType<typeof outcome>>[] = [];
    // 120 distinct queries: enough calls go upstream (and need retries) for the rate below to be more than a handful of samples.
    const queries = Array.from({ length: 480 }, (_, i) => `query ${i % 120}`);
    for (let i = 0; i < queries.length; i += 12) {
      results.push(...(await Promise.all(queries.slice(i, i + 12).map((q) => outcome(client.call("serpapi", "search", { q }))))));
    }
    const ok = results.filter((r) => r.ok);
    const retried = ok.filter((r) => r.ok && (r.meta.attempts as number) > 1).length;
    const failedAfterRetries = results.filter((r) => !r.ok).length;
    const hits = ok.filter((r) => r.ok && r.meta.cache === "hit").length;
    const successRate = ok.length / results.length;
    const codes: Record<string, number> = {};
    for (const r of results) if (!r.ok) codes[r.code] = (codes[r.code] ?? 0) + 1;
    console.log("failures by code", JSON.stringify(codes));
    const retrySuccess = retried / (retried + failedAfterRetries);
    console.log(
      `chaos 30% timeouts + 25% 500s: client success ${(successRate * 100).toFixed(1)}% (${ok.length}/${results.length}); cache hits ${hits}; calls that needed retries and succeeded ${retried}, failed after retries ${failedAfterRetries} → retry success ${(retrySuccess * 100).toFixed(1)}%`,
    );
    expect(successRate).toBeGreaterThan(0.9);
    // Expected ≈ 83 % (1 − 0.55³); the bound leaves room for the sampling noise of a few dozen retried calls.
    expect(retrySuccess).toBeGreaterThan(0.6);
    const health = await http(`${t.url}/health`);
    expect(health.json.chaos.active).toBe(true);
  });
});

describe("circuit breaker under a dead upstream", () => {
  let t: TestGateway;
  let client: AgentClient;
  // The breaker's cool-down runs on this clock, so a slow machine cannot end it mid-test.
  const clock = new TestClock(Date.now());

  beforeAll(async () => {
    t = await startTestGateway(
      { FF_CACHE: "off", BREAKER_MIN_CALLS: "5", BREAKER_COOLDOWN_MS: "400", BREAKER_HALF_OPEN_PROBES: "2", RETRY_MAX_ATTEMPTS: "2", RETRY_BASE_MS: "1" },
      { now: clock.now },
    );
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t, { now: clock.now }));
  });
  afterAll(async () => t.close());

  it("opens, fast-fails with circuit_open and Retry-After, then recovers when the upstream returns", async () => {
    const mock = t.gateway.mockUpstreams!;
    mock.setFault("openai", { mode: "down" });
    const chat = () => client.call("openai", "chat", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    const first: string[] = [];
    for (let i = 0; i < 6; i++) first.push((await outcome(chat())).ok ? "ok" : "failed");
    expect(first.every((r) => r === "failed")).toBe(true);
    const seen = mock.stats().openai;
    const fastFails: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const err = (await chat().catch((e) => e)) as GatewayClientError;
      fastFails.push(performance.now() - started);
      expect(err.code).toBe("circuit_open");
      expect(err.status).toBe(503);
      expect(err.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    }
    expect(mock.stats().openai).toBe(seen); // nothing reached the upstream while open
    fastFails.sort((a, b) => a - b);
    console.log(`breaker fast-fail, client-observed round trip: p50 ${fastFails[10]!.toFixed(2)} ms, max ${fastFails[19]!.toFixed(2)} ms`);
    expect((await http(`${t.url}/health`)).json.breakers.openai).toBe("open");

    mock.setFault("openai", undefined);
    clock.advance(399);
    expect((await http(`${t.url}/health`)).json.breakers.openai).toBe("open");
    clock.advance(2); // the cool-down is over: the next calls are half-open probes
    const probes = await Promise.all([outcome(chat()), outcome(chat())]);
    expect(probes.every((p) => p.ok)).toBe(true);
    expect((await outcome(chat())).ok).toBe(true);
    expect((await http(`${t.url}/health`)).json.breakers.openai).toBe("closed");
  });

  it("a client's bad requests (upstream 4xx) never open the breaker", async () => {
    for (let i = 0; i < 15; i++) {
      const err = (await client
        .call("openai", "chat", { model: "no-such-model", messages: [{ role: "user", content: "x" }] })
        .catch((e) => e)) as GatewayClientError;
      expect(err.code).toBe("upstream_client_error");
    }
    expect((await http(`${t.url}/health`)).json.breakers.openai).toBe("closed");
  });
});

describe("cache, single-flight and stale-if-error through the gateway", () => {
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    t = await startTestGateway({ MOCK_LATENCY_MS: "30", CACHE_DEFAULT_TTL_SECONDS: "60", RETRY_MAX_ATTEMPTS: "1", BREAKER_MIN_CALLS: "1000" });
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t));
  });
  afterAll(async () => t.close());

  it("miss, then hit; no-cache bypasses; identical concurrent misses make one upstream call", async () => {
    const mock = t.gateway.mockUpstreams!;
    const before = mock.stats().serpapi;
    const a = await client.call("serpapi", "search", { q: "cache me" });
    const b = await client.call("serpapi", "search", { q: "cache me" });
    expect([a.meta.cache, b.meta.cache]).toEqual(["miss", "hit"]);
    expect(b.data).toEqual(a.data);
    const c = await client.call("serpapi", "search", { q: "cache me" }, { headers: { "cache-control": "no-cache" } });
    expect(c.meta.cache).toBe("bypass");
    expect(mock.stats().serpapi - before).toBe(2);

    const burst = await Promise.all(Array.from({ length: 10 }, () => client.call("serpapi", "search", { q: "burst" })));
    expect(mock.stats().serpapi - before).toBe(3);
    expect(burst.filter((r) => r.meta.cache === "miss")).toHaveLength(1);
  });

  it("serves a recent stale answer, marked stale, when the upstream fails; never caches errors", async () => {
    const mock = t.gateway.mockUpstreams!;
    const fresh = await client.call("http_fetch", "get", { url: "https://example.com/stale-test" });
    expect(fresh.meta.cache).toBe("miss");
    t.gateway.resilience.clearCache();
    await client.call("http_fetch", "get", { url: "https://example.com/stale-test" });
    // Expire it by bypassing nothing: move past TTL is not possible with the real clock, so fail a bypassing call instead.
    mock.setFault("web", { mode: "down" });
    const stale = await client.call("http_fetch", "get", { url: "https://example.com/stale-test" }, { headers: { "cache-control": "no-cache" } });
    expect(stale.meta.cache).toBe("stale");
    const uncached = (await client.call("http_fetch", "get", { url: "https://example.com/never-seen" }).catch((e) => e)) as GatewayClientError;
    expect(uncached.code).toBe("upstream_error");
    mock.setFault("web", undefined);
    expect((await client.call("http_fetch", "get", { url: "https://example.com/never-seen" })).meta.cache).toBe("miss");
  });
});

describe("gmail_send is never sent twice", () => {
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    t = await startTestGateway({
      CHAOS: JSON.stringify({ gmail_send: { error500: 0.3, reset: 0.2 } }),
      CHAOS_SEED: "7",
      RETRY_MAX_ATTEMPTS: "4",
      BREAKER_MIN_CALLS: "1000",
    });
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t));
  });
  afterAll(async () => t.close());

  it("is not retried, and repeats with the same Idempotency-Key replay the first result", async () => {
    const mock = t.gateway.mockUpstreams!;
    const sentBefore = mock.stats().gmailSent;
    let delivered = 0;
    for (let i = 0; i < 30; i++) {
      const key = randomUUID();
      const send = () => client.call<any>("gmail_send", "send", { to: "a@example.com", subject: `m${i}`, text: "t" }, { headers: { "idempotency-key": key } });
      const results = await Promise.all([outcome(send()), outcome(send()), outcome(send())]);
      const oks = results.filter((r) => r.ok);
      for (const r of results) if (r.ok) expect(r.meta.attempts === 1 || r.meta.replayed === true).toBe(true);
      if (oks.length > 0) delivered++;
    }
    expect(mock.stats().gmailSent - sentBefore).toBe(delivered);

    // Without chaos, so every assertion below runs every time.
    await t.admin.raw("DELETE", "/api/admin/chaos");
    const key = randomUUID();
    await client.call("gmail_send", "send", { to: "a@example.com", subject: "same", text: "t" }, { headers: { "idempotency-key": key } });
    const conflict = (await client
      .call("gmail_send", "send", { to: "b@example.com", subject: "other", text: "t" }, { headers: { "idempotency-key": key } })
      .catch((e) => e)) as GatewayClientError;
    expect(conflict).toBeInstanceOf(GatewayClientError);
    expect(conflict.status).toBe(409);
    expect(conflict.code).toBe("idempotency_conflict");
  });
});

describe("chaos admin API", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t.close());
  const admin = () => ({ authorization: `Bearer ${t.adminKey}` });

  it("sets, shows, validates and clears faults; /health says when chaos is on", async () => {
    expect((await http(`${t.url}/health`)).json.chaos.active).toBe(false);
    const set = await http(`${t.url}/api/admin/chaos/serpapi`, {
      method: "PUT",
      headers: admin(),
      body: { timeout: 0.3, error500: 0.25, latency: 0.2, latencyMs: 800 },
    });
    expect(set.json).toMatchObject({ active: true, tools: { serpapi: { timeout: 0.3 } } });
    expect((await http(`${t.url}/health`)).json.chaos.active).toBe(true);
    const bad = await http(`${t.url}/api/admin/chaos`, { method: "PUT", headers: admin(), body: { serpapi: { timeout: 2 } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("serpapi.timeout");
    expect((await http(`${t.url}/api/admin/chaos`, { headers: admin() })).json.tools.serpapi.timeout).toBe(0.3); // nothing half-applied
    expect((await http(`${t.url}/api/admin/chaos`, { method: "DELETE", headers: admin() })).json.active).toBe(false);
    expect((await http(`${t.url}/api/admin/chaos`)).status).toBe(401);
  });
});

describe("circuit breaker under an upstream that fails every other attempt", () => {
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    t = await startTestGateway({
      FF_CACHE: "off",
      BREAKER_MIN_CALLS: "6",
      BREAKER_FAILURE_PERCENT: "50",
      RETRY_MAX_ATTEMPTS: "2",
      RETRY_BASE_MS: "1",
      RETRY_BUDGET_PERCENT: "1000",
      POLICY_DEFAULTS: "off",
    });
    await allowEverything(t);
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t));
  });
  afterAll(async () => t.close());

  it("opens although retries rescue every call: each attempt is an observation of the upstream", async () => {
    const mock = t.gateway.mockUpstreams!;
    const results: Awaited<ReturnType<typeof outcome>>[] = [];
    for (let i = 0; i < 12; i++) {
      // The first attempt of each call fails with a 500, its retry succeeds.
      mock.setFault("serpapi", { mode: "status", status: 500, remaining: 1 });
      results.push(await outcome(client.call("serpapi", "search", { q: `flaky ${i} ${randomUUID()}` })));
      if (!results[results.length - 1]!.ok) break;
    }
    mock.setFault("serpapi", undefined);
    const rescued = results.filter((r) => r.ok && r.meta.attempts === 2);
    expect(rescued.length).toBeGreaterThanOrEqual(3);
    // Half of all attempts failed: the breaker opened and the next call is refused without trying.
    expect((await http(`${t.url}/health`)).json.breakers.serpapi).toBe("open");
    const refused = await outcome(client.call("serpapi", "search", { q: `after ${randomUUID()}` }));
    expect(refused).toMatchObject({ ok: false, code: "circuit_open" });
  });
});
