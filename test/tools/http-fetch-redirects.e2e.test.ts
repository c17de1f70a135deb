import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

/**
 * Policy's url.* guards hold on every redirect hop. Mock mode: every hop is a real HTTP request to
 * the mock web server (its `/redirect?to=` answers 302), with the hop's own Host.
 */
const via = (from: string, to: string) => `${from}/redirect?to=${encodeURIComponent(to)}`;
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as GatewayClientError,
  );

async function waitForJob(url: string, token: string, jobId: string) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const r = await request(`${url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status === 200 && (r.json.status === "succeeded" || r.json.status === "failed")) return r.json;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`job ${jobId} did not finish`);
}

describe("http_fetch re-applies policy to every redirect", () => {
  let t: TestGateway;
  let denyEvil: AgentClient;
  let onlyGood: AgentClient;
  let httpsOnly: AgentClient;

  beforeAll(async () => {
    t = await startTestGateway({ UPSTREAM_MODE: "mock", FF_ASYNC: "on", FF_CACHE: "off" });
    const a = await newAgent(t, { role: "fetch-deny", scopes: ["http_fetch:*"] });
    const b = await newAgent(t, { role: "fetch-only", scopes: ["http_fetch:*"] });
    const c = await newAgent(t, { role: "fetch-https", scopes: ["http_fetch:*"] });
    denyEvil = a.client;
    onlyGood = b.client;
    httpsOnly = c.client;
    await t.admin.raw("POST", "/api/policies", {
      name: "deny-evil",
      subject: { role: "fetch-deny" },
      rules: [
        { effect: "allow", scopes: ["http_fetch:*"] },
        { effect: "deny", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["evil.test", "*.evil.test"] } } },
      ],
    });
    await t.admin.raw("POST", "/api/policies", {
      name: "only-good",
      subject: { role: "fetch-only" },
      rules: [
        { effect: "allow", scopes: ["http_fetch:*"] },
        { effect: "allow", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["good.example", "*.good.example"] } } },
      ],
    });
    await t.admin.raw("POST", "/api/policies", {
      name: "https-only",
      subject: { role: "fetch-https" },
      rules: [
        { effect: "allow", scopes: ["http_fetch:*"] },
        { effect: "allow", scopes: ["http_fetch:*"], guards: { "url.scheme": { equals: "https" } } },
      ],
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it("a redirect to an allowed host is followed", async () => {
    const got = await onlyGood.call<any>("http_fetch", "get", { url: via("http://good.example", "http://www.good.example/page") });
    expect(got.data).toMatchObject({ status: 200, redirects: 1, url: "http://www.good.example/page" });
  });

  it.each([
    ["a deny rule's host", () => denyEvil, via("http://fine.example", "http://evil.test/secret")],
    ["a deny rule's host, spelled with a trailing dot", () => denyEvil, via("http://fine.example", "http://a.evil.test./secret")],
    ["a host outside oneOf", () => onlyGood, via("http://good.example", "http://other.example/")],
    ["a host outside oneOf, two hops away", () => onlyGood, via("http://good.example", via("http://www.good.example", "http://other.example/"))],
    ["a scheme the policy refuses", () => httpsOnly, via("https://good.example", "http://good.example/plain")],
  ])("a redirect to %s is refused with guard_failed", async (_name, agent, url) => {
    const err = await failure(agent().call("http_fetch", "get", { url }));
    expect(err, "the redirect was followed").toBeInstanceOf(GatewayClientError);
    expect(err!.status).toBe(403);
    expect(err!.code).toBe("guard_failed");
    expect(err!.details).toMatchObject({ reason: "guard_failed", rule: { policyName: expect.any(String) } });
    expect(String(err!.details?.redirect)).toMatch(/^http:\/\//);
    expect(err!.correlationId).toBeTruthy();
  });

  it("the refusal is audited as a denial", async () => {
    const err = await failure(denyEvil.call("http_fetch", "get", { url: via("http://fine.example", "http://evil.test/") }));
    const audit = await request(`${t.url}/api/audit?tool=http_fetch&decision=deny`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    const record = (audit.json.records as { correlationId: string; reason: string }[]).find((r) => r.correlationId === err!.correlationId);
    expect(record).toMatchObject({ reason: "guard_failed" });
  });

  it("an async job is held to the same rule when it runs", async () => {
    const token = await denyEvil.token();
    const submitted = await request(`${t.url}/api/jobs`, {
      headers: { authorization: `Bearer ${token}` },
      body: { tool: "http_fetch", action: "get", params: { url: via("http://fine.example", "http://evil.test/") } },
    });
    expect(submitted.status).toBe(202);
    const done = await waitForJob(t.url, token, submitted.json.jobId);
    expect(done.status).toBe("failed");
    expect(done.error).toMatchObject({ code: "guard_failed" });
  });
});

describe("a followed redirect is shared through the cache only with agents bound by the same policies", () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway({ UPSTREAM_MODE: "mock", FF_CACHE: "on" });
  });
  afterAll(async () => {
    await t.close();
  });

  it("same role, same URL: the second agent's own policy decides the redirect", async () => {
    const { agent: a, client: permissive } = await newAgent(t, { role: "fetchers", scopes: ["http_fetch:*"] });
    const { agent: b, client: strict } = await newAgent(t, { role: "fetchers", scopes: ["http_fetch:*"] });
    await t.admin.raw("POST", "/api/policies", { name: "fetchers", subject: { role: "fetchers" }, rules: [{ effect: "allow", scopes: ["http_fetch:*"] }] });
    await t.admin.raw("POST", "/api/policies", {
      name: "strict-b",
      subject: { agentId: b.id },
      rules: [{ effect: "deny", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["evil.test"] } } }],
    });
    expect(a.id).not.toBe(b.id);
    const url = via("http://fine.example", "http://evil.test/cached");
    const first = await permissive.call<any>("http_fetch", "get", { url });
    expect(first.data).toMatchObject({ status: 200, url: "http://evil.test/cached" });
    const err = await failure(strict.call("http_fetch", "get", { url }));
    expect(err?.code, "the cached answer was served").toBe("guard_failed");
    // The permissive agent's own repeat is still a cache hit, and so is a third agent's of the same
    // role without policies of its own: they share every policy that judged the redirect.
    expect((await permissive.call("http_fetch", "get", { url })).meta.cache).toBe("hit");
    const { client: colleague } = await newAgent(t, { role: "fetchers", scopes: ["http_fetch:*"] });
    expect((await colleague.call("http_fetch", "get", { url })).meta.cache).toBe("hit");
  });
});

describe("live mode: the refused hop is never sent", () => {
  let t: TestGateway;
  let upstream: http.Server;
  let port: number;
  const seen: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(`${req.headers.host}${req.url}`);
      const to = new URL(req.url ?? "/", "http://x").searchParams.get("to");
      if (to !== null) res.writeHead(302, { location: to });
      res.end("ok");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    port = (upstream.address() as AddressInfo).port;
    t = await startTestGateway({ UPSTREAM_MODE: "live", SSRF_ALLOW: "127.0.0.1/32" });
  });
  afterAll(async () => {
    await t.close();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it("a redirect from 127.0.0.1 to localhost (denied by name) stops at the first hop", async () => {
    const { client } = await newAgent(t, { role: "live-fetch", scopes: ["http_fetch:*"] });
    await t.admin.raw("POST", "/api/policies", {
      name: "no-localhost",
      subject: { role: "live-fetch" },
      rules: [
        { effect: "allow", scopes: ["http_fetch:*"] },
        { effect: "deny", scopes: ["http_fetch:*"], guards: { "url.host": { oneOf: ["localhost"] } } },
      ],
    });
    const err = await failure(
      client.call("http_fetch", "get", { url: `http://127.0.0.1:${port}/start?to=${encodeURIComponent(`http://localhost:${port}/secret`)}` }),
    );
    expect(err?.code).toBe("guard_failed");
    expect(seen.filter((s) => s.includes("/secret"))).toEqual([]);
    expect(seen.some((s) => s.includes("/start"))).toBe(true);
    // The same chain to an allowed name is followed.
    const ok = await client.call<any>("http_fetch", "get", {
      url: `http://127.0.0.1:${port}/start?to=${encodeURIComponent(`http://127.0.0.1:${port}/public`)}`,
    });
    expect(ok.data).toMatchObject({ status: 200, redirects: 1 });
  });
});
