import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError } from "../../src/client/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { redisAvailable, REDIS_URL } from "../helpers/services.js";

const admin = (t: TestGateway) => ({ authorization: `Bearer ${t.adminKey}` });

describe("policies through the admin API, enforced on the proxy road", () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway({ POLICY_DEFAULTS: "off" });
    await storeBuiltinCredentials(t);
  });
  afterAll(async () => t.close());

  it("with no policy at all, everything is denied (deny by default)", async () => {
    const { client } = await newAgent(t, { role: "nobody" });
    const err = (await client.call("serpapi", "search", { q: "x" }).catch((e) => e)) as GatewayClientError;
    expect(err.status).toBe(403);
    expect(err.code).toBe("scope_denied");
  });

  it("the issue's example is accepted as written, versioned, and enforced on the next request", async () => {
    const example = {
      name: "researchers",
      subject: { role: "researcher" },
      rules: [
        { effect: "allow", scopes: ["serpapi:search", "http_fetch:get"] },
        { effect: "deny", scopes: ["gmail_send:*"] },
        { effect: "allow", scopes: ["http_fetch:get"], guards: { "url.host": { oneOf: ["example.com", "*.example.org"] } } },
        { effect: "allow", scopes: ["serpapi:search"], quota: { limit: 1000, per: "day", timeZone: "UTC" } },
        { effect: "allow", scopes: ["*"], rateLimit: { perSecond: 10, burst: 20 } },
      ],
    };
    const created = await http(`${t.url}/api/policies`, { headers: admin(t), body: example });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: "researchers", version: 1 });
    expect(created.json.hash).toMatch(/^[0-9a-f]{32}$/);

    const { client } = await newAgent(t, { role: "researcher" });
    expect((await client.call<any>("serpapi", "search", { q: "allowed" })).data.search_metadata.status).toBe("Success");
    const guard = (await client.call("http_fetch", "get", { url: "https://evil.test/" }).catch((e) => e)) as GatewayClientError;
    expect(guard.code).toBe("guard_failed");
    expect(guard.details).toMatchObject({ reason: "guard_failed", rule: { policyName: "researchers", rule: 2 } });
    const mail = (await client.call("gmail_send", "send", { to: "a@b.com", subject: "s", text: "t" }).catch((e) => e)) as GatewayClientError;
    expect(mail.code).toBe("scope_denied");

    // Tighten: a quota of 1 per minute on search, effective on the very next call.
    const id = created.json.id as string;
    const updated = await http(`${t.url}/api/policies/${id}`, {
      method: "PUT",
      headers: admin(t),
      body: { ...example, rules: [...example.rules, { effect: "allow", scopes: ["serpapi:search"], quota: { limit: 1, per: "minute" } }] },
    });
    expect(updated.json.version).toBe(2);
    await client.call("serpapi", "search", { q: "one" });
    const limited = (await client.call("serpapi", "search", { q: "two" }).catch((e) => e)) as GatewayClientError;
    expect(limited.status).toBe(429);
    expect(limited.code).toBe("quota_exceeded");
    expect(limited.retryAfterSeconds).toBeGreaterThan(0);

    const versions = await http(`${t.url}/api/policies/${id}`, { headers: admin(t) });
    expect(versions.json.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    const patched = await http(`${t.url}/api/policies/${id}`, { method: "PATCH", headers: admin(t), body: { enabled: false } });
    expect(patched.json.version).toBe(3);
    expect(((await client.call("serpapi", "search", { q: "disabled" }).catch((e) => e)) as GatewayClientError).code).toBe("scope_denied");
    expect((await http(`${t.url}/api/policies/${id}`, { method: "DELETE", headers: admin(t) })).status).toBe(204);
    expect((await http(`${t.url}/api/policies/${id}`, { headers: admin(t) })).status).toBe(404);
  });

  it("refuses a malformed policy with 400 naming the field, and applies nothing", async () => {
    const before = (await http(`${t.url}/api/policies`, { headers: admin(t) })).json.policies.length;
    const bad = await http(`${t.url}/api/policies`, {
      headers: admin(t),
      body: {
        name: "bad",
        subject: { role: "r" },
        rules: [
          { effect: "allow", scopes: ["*"] },
          { effect: "allow", scopes: ["*"], quota: { limit: 5, per: "fortnight" } },
        ],
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("policy_invalid");
    expect(bad.json.error.message).toContain("rules[1].quota.per");
    expect(bad.json.error.details.field).toBe("rules[1].quota.per");
    expect((await http(`${t.url}/api/policies`, { headers: admin(t) })).json.policies.length).toBe(before);
    const dup = await http(`${t.url}/api/policies`, {
      headers: admin(t),
      body: { name: "dup", subject: { all: true }, rules: [{ effect: "allow", scopes: ["openai:chat"] }] },
    });
    expect(dup.status).toBe(201);
    expect(
      (await http(`${t.url}/api/policies`, { headers: admin(t), body: { name: "dup", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] } }))
        .status,
    ).toBe(409);
    expect((await http(`${t.url}/api/policies`, { body: { name: "x" } })).status).toBe(401);
  });

  it("accepts YAML", async () => {
    const r = await fetch(`${t.url}/api/policies`, {
      method: "POST",
      headers: { ...admin(t), "content-type": "application/yaml" },
      body: "name: yaml-policy\nsubject: {role: yamlers}\nrules:\n  - effect: allow\n    scopes: ['serpapi:search']\n",
    });
    expect(r.status).toBe(201);
    const bad = await fetch(`${t.url}/api/policies`, { method: "POST", headers: { ...admin(t), "content-type": "application/yaml" }, body: "name: [unclosed" });
    expect(bad.status).toBe(400);
  });

  it("explain gives the decision and every rule, without calling anything or using quota", async () => {
    await http(`${t.url}/api/policies`, {
      headers: admin(t),
      body: {
        name: "explained",
        subject: { role: "explainer" },
        rules: [
          { effect: "allow", scopes: ["serpapi:search"] },
          { effect: "allow", scopes: ["serpapi:search"], quota: { limit: 2, per: "day" } },
        ],
      },
    });
    const { agent, client } = await newAgent(t, { role: "explainer" });
    const calls = t.gateway.mockUpstreams!.stats().serpapi;
    for (let i = 0; i < 3; i++) {
      const r = await http(`${t.url}/api/policies/explain`, {
        headers: admin(t),
        body: { agentId: agent.id, tool: "serpapi", action: "search", params: { q: "x" } },
      });
      expect(r.json).toMatchObject({ decision: "allow", limits: [{ kind: "quota", limit: 2, remaining: 2 }] });
      expect(r.json.trace.filter((x: { policyName: string }) => x.policyName === "explained").map((x: { outcome: string }) => x.outcome)).toEqual([
        "granted",
        "passed",
      ]);
    }
    expect(t.gateway.mockUpstreams!.stats().serpapi).toBe(calls);
    await client.call("serpapi", "search", { q: "1" });
    await client.call("serpapi", "search", { q: "2" });
    const exhausted = await http(`${t.url}/api/policies/explain`, {
      headers: admin(t),
      body: { token: await client.token(), tool: "serpapi", action: "search", params: { q: "x" } },
    });
    expect(exhausted.json, JSON.stringify(exhausted.json)).toMatchObject({ decision: "deny", reason: "quota_exceeded" });
    const denied = await http(`${t.url}/api/policies/explain`, { headers: admin(t), body: { agentId: agent.id, tool: "gmail_send", action: "send" } });
    expect(denied.json).toMatchObject({ decision: "deny", reason: "scope_denied" });
  });

  it("a call refused before the upstream (bad parameters) never uses quota; a failed upstream call is refunded", async () => {
    await http(`${t.url}/api/policies`, {
      headers: admin(t),
      body: {
        name: "tight",
        subject: { role: "tight" },
        rules: [
          { effect: "allow", scopes: ["serpapi:search"] },
          { effect: "allow", scopes: ["serpapi:search"], quota: { limit: 1, per: "day" } },
        ],
      },
    });
    const { client } = await newAgent(t, { role: "tight" });
    await client.call("serpapi", "search", { q: "" }).catch(() => undefined); // invalid: refused before policy
    t.gateway.mockUpstreams!.setFault("serpapi", { mode: "status", status: 503 });
    const failed = (await client.call("serpapi", "search", { q: "fails upstream" }).catch((e) => e)) as GatewayClientError;
    expect(failed.code).toBe("upstream_error");
    t.gateway.mockUpstreams!.setFault("serpapi", undefined);
    expect((await client.call<any>("serpapi", "search", { q: "counts" })).data.search_metadata.status).toBe("Success");
    expect(((await client.call("serpapi", "search", { q: "over" }).catch((e) => e)) as GatewayClientError).code).toBe("quota_exceeded");
  });

  it("a call refused before the upstream by an open breaker gives its quota back, even when failed calls count", async () => {
    const t2 = await startTestGateway({
      POLICY_DEFAULTS: "off",
      POLICY_COUNT_FAILED_CALLS: "on",
      BREAKER_MIN_CALLS: "2",
      RETRY_MAX_ATTEMPTS: "1",
      FF_CACHE: "off",
    });
    try {
      await storeBuiltinCredentials(t2);
      await http(`${t2.url}/api/policies`, {
        headers: admin(t2),
        body: {
          name: "q",
          subject: { role: "q" },
          rules: [
            { effect: "allow", scopes: ["openai:chat"] },
            { effect: "allow", scopes: ["openai:chat"], quota: { limit: 3, per: "day" } },
          ],
        },
      });
      const { client } = await newAgent(t2, { role: "q" });
      const chat = () =>
        client.call("openai", "chat", { model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).then(
          () => "ok",
          (e: GatewayClientError) => e.code,
        );
      t2.gateway.mockUpstreams!.setFault("openai", { mode: "status", status: 500 });
      expect([await chat(), await chat()]).toEqual(["upstream_error", "upstream_error"]); // both count (POLICY_COUNT_FAILED_CALLS=on)
      expect(await chat()).toBe("circuit_open"); // never sent: refunded
      expect(await chat()).toBe("circuit_open");
      t2.gateway.mockUpstreams!.setFault("openai", undefined);
      const explain = await http(`${t2.url}/api/policies/explain`, {
        headers: admin(t2),
        body: { token: await client.token(), tool: "openai", action: "chat", params: {} },
      });
      expect(explain.json.limits[0].remaining).toBe(1);
    } finally {
      await t2.close();
    }
  });

  it("installs the documented default set on a fresh store", async () => {
    const fresh = await startTestGateway();
    try {
      const names = (await http(`${fresh.url}/api/policies`, { headers: admin(fresh) })).json.policies.map((p: { name: string }) => p.name);
      expect(names.sort()).toEqual(["default-assistant", "default-guardrails", "default-researcher"]);
    } finally {
      await fresh.close();
    }
  });
});

const redisUp = await redisAvailable();
describe.skipIf(!redisUp)("two gateways sharing Redis enforce one quota", () => {
  it("together they allow exactly N calls", async () => {
    const env = { REDIS_URL, REDIS_PREFIX: `test:quota:${randomBytes(4).toString("hex")}:`, POLICY_DEFAULTS: "off" };
    const a = await startTestGateway(env);
    const b = await startTestGateway(env);
    try {
      for (const g of [a, b]) {
        await storeBuiltinCredentials(g);
        // Each has its own embedded store here; the counters are what they share.
        await http(`${g.url}/api/policies`, {
          headers: admin(g),
          body: {
            name: "shared-quota",
            subject: { role: "team" },
            rules: [
              { effect: "allow", scopes: ["serpapi:search"] },
              { id: "team-quota", effect: "allow", scopes: ["serpapi:search"], quota: { limit: 15, per: "day", shared: true } },
            ],
          },
        });
      }
      const pa = (await http(`${a.url}/api/policies`, { headers: admin(a) })).json.policies[0].id;
      const pb = (await http(`${b.url}/api/policies`, { headers: admin(b) })).json.policies[0].id;
      expect(pa).not.toBe(pb);
      // Same policy id on both (as with a shared database), so both count against one key.
      await a.gateway.store.driver.run(`UPDATE policies SET id = $1 WHERE id = $2`, ["pol_shared", pa]);
      await a.gateway.store.driver.run(`UPDATE policy_versions SET policy_id = $1 WHERE policy_id = $2`, ["pol_shared", pa]);
      await b.gateway.store.driver.run(`UPDATE policies SET id = $1 WHERE id = $2`, ["pol_shared", pb]);
      await b.gateway.store.driver.run(`UPDATE policy_versions SET policy_id = $1 WHERE policy_id = $2`, ["pol_shared", pb]);
      await Promise.all([a.gateway.policies.reload(), b.gateway.policies.reload()]);
      const clients = await Promise.all([
        newAgent(a, { role: "team" }),
        newAgent(a, { role: "team" }),
        newAgent(b, { role: "team" }),
        newAgent(b, { role: "team" }),
      ]);
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          clients[i % 4]!.client.call("serpapi", "search", { q: `call ${i}` }).then(
            () => "ok",
            (e: GatewayClientError) => e.code,
          ),
        ),
      );
      expect(results.filter((r) => r === "ok")).toHaveLength(15);
      expect(results.filter((r) => r === "quota_exceeded")).toHaveLength(25);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
