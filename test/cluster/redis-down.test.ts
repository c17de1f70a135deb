import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/client/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { ownRedis, type OwnRedis } from "../helpers/own-services.js";

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  do {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < deadline);
  return last;
}

describe("Redis dies mid-run and comes back", () => {
  let redis: OwnRedis;
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    redis = await ownRedis();
    t = await startTestGateway({ REDIS_URL: redis.url, REDIS_PREFIX: "redis-down-test:" });
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t, { scopes: ["serpapi:search", "gmail_send:send"] }));
  });
  afterAll(async () => {
    await t.close();
    await redis.kill();
  });

  const ready = () => http(`${t.url}/ready`).then((r) => r.json);

  it("reports ready while Redis answers", async () => {
    const r = await eventually(ready, (j) => j.status === "ready");
    expect(r.checks.redis.status).toBe("up");
  });

  it("keeps serving, reports degraded and logs it when Redis is killed", async () => {
    await redis.kill();
    const r = await eventually(ready, (j) => j.status === "degraded");
    expect(r.status).toBe("degraded");
    expect(r.checks.redis.status).toBe("down");
    expect((await http(`${t.url}/ready?strict=true`)).status).toBe(503);
    const call = await client.call<any>("serpapi", "search", { q: "while redis is down" });
    expect(call.data.search_metadata.status).toBe("Success");
    // Idempotency keys fall back to this instance's (REDIS_FAILURE_MODE=open): a repeat is still answered once here.
    const sentBefore = t.gateway.mockUpstreams!.stats().gmailSent;
    const send = () =>
      client.call<any>("gmail_send", "send", { to: "a@example.com", subject: "during outage", text: "t" }, { headers: { "idempotency-key": "outage-key-1" } });
    const first = await send();
    const again = await send();
    expect(again.meta.replayed).toBe(true);
    expect(again.data).toEqual(first.data);
    expect(t.gateway.mockUpstreams!.stats().gmailSent).toBe(sentBefore + 1);
    expect(t.logs.join("")).toContain("Redis unreachable for idempotency keys");
    // Admin writes that announce a change still succeed (the announcement is best effort).
    await t.admin.putCredential("serpapi", "serp-test-key-0002");
    expect(t.logs.join("")).toContain("cluster bus down");
  });

  it("reconnects by itself when Redis returns", async () => {
    await redis.start();
    const r = await eventually(ready, (j) => j.status === "ready", 15_000);
    expect(r.status).toBe("ready");
    expect((await client.call<any>("serpapi", "search", { q: "after redis returned" })).data.search_metadata.status).toBe("Success");
  });
});
