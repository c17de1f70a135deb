import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

/** Polls the job until it has finished (no fixed sleeps: a deadline). */
async function finished(url: string, adminKey: string, jobId: string, deadlineMs = 10_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const r = await request(`${url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${adminKey}` } });
    if (r.status === 200 && (r.json.status === "succeeded" || r.json.status === "failed")) return r.json;
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${r.text}`);
    await new Promise((res) => setImmediate(res));
  }
}

const tokenIdOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")).jti as string;
const SEND = { tool: "gmail_send", action: "send", params: { to: ["ops@example.com"], subject: "queued", text: "hello" } };

describe("jobs are checked again when they run", () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway({ FF_ASYNC: "on", UPSTREAM_MODE: "mock" });
    await storeBuiltinCredentials(t);
    await t.admin.raw("POST", "/api/policies", {
      name: "mail-allowed",
      subject: { all: true },
      rules: [{ effect: "allow", scopes: ["gmail_send:send", "serpapi:search"] }],
    });
  });
  afterAll(async () => {
    await t.close();
  });
  // Each test queues its jobs with the worker stopped, changes something, then lets the worker run them.
  beforeEach(async () => {
    await t.gateway.jobs!.stop();
  });

  const submit = async (token: string, body: unknown = SEND) => {
    const r = await request(`${t.url}/api/jobs`, { headers: { authorization: `Bearer ${token}` }, body });
    expect(r.status, r.text).toBe(202);
    return r.json.jobId as string;
  };
  const sent = () => t.gateway.mockUpstreams!.stats().gmailSent;

  it("a job whose agent was suspended after it was accepted fails with agent_suspended and sends nothing", async () => {
    const { client, agent } = await newAgent(t, { scopes: ["gmail_send:send"] });
    const jobId = await submit(await client.token());
    await t.admin.suspendAgent(agent.id);
    const before = sent();
    t.gateway.jobs!.start();
    const job = await finished(t.url, t.adminKey, jobId);
    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "agent_suspended", status: 403 });
    expect(sent()).toBe(before);
  });

  it("a job whose token was revoked (by token id) fails with token_revoked and sends nothing", async () => {
    const { client } = await newAgent(t, { scopes: ["gmail_send:send"] });
    const token = await client.token();
    const jobId = await submit(token);
    await t.admin.revokeToken(tokenIdOf(token));
    const before = sent();
    t.gateway.jobs!.start();
    const job = await finished(t.url, t.adminKey, jobId);
    expect(job).toMatchObject({ status: "failed", error: { code: "token_revoked", status: 401 } });
    expect(sent()).toBe(before);
  });

  it("a job the policy no longer allows fails with the denial and sends nothing", async () => {
    const { client, agent } = await newAgent(t, { scopes: ["gmail_send:send"] });
    const jobId = await submit(await client.token());
    await t.admin.raw("POST", "/api/policies", {
      name: `no-mail-${agent.id}`,
      subject: { agentId: agent.id },
      rules: [{ effect: "deny", scopes: ["gmail_send:send"] }],
    });
    const before = sent();
    t.gateway.jobs!.start();
    const job = await finished(t.url, t.adminKey, jobId);
    expect(job.status).toBe("failed");
    expect(job.error.status).toBe(403);
    expect(sent()).toBe(before);
  });

  it("a job still allowed runs, and its audit record says it came by the job door", async () => {
    const { client } = await newAgent(t, { scopes: ["gmail_send:send"] });
    const jobId = await submit(await client.token());
    const before = sent();
    t.gateway.jobs!.start();
    const job = await finished(t.url, t.adminKey, jobId);
    expect(job.status).toBe("succeeded");
    expect(sent()).toBe(before + 1);
    await t.gateway.audit.flush();
    const records = (await t.gateway.store.queryAudit({ limit: 1000 })).filter((r) => r.correlationId === job.correlationId);
    expect(records.map((r) => [r.door, r.status]).sort()).toEqual([
      ["job", 200],
      ["job", 202],
    ]);
    // The admin API filters by door.
    const viaApi = await request(`${t.url}/api/audit?door=job&limit=1000`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(viaApi.json.records.some((r: { correlationId: string }) => r.correlationId === job.correlationId)).toBe(true);
    expect(viaApi.json.records.every((r: { door: string }) => r.door === "job")).toBe(true);
    expect((await request(`${t.url}/api/audit?door=carrier-pigeon`, { headers: { authorization: `Bearer ${t.adminKey}` } })).status).toBe(400);
  });

  it("quota is charged when the job runs, and refunded by the same stage when the upstream fails", async () => {
    const { client, agent } = await newAgent(t, { scopes: ["gmail_send:send"] });
    await t.admin.raw("POST", "/api/policies", {
      name: `one-mail-${agent.id}`,
      subject: { agentId: agent.id },
      rules: [{ effect: "allow", scopes: ["gmail_send:send"], quota: { limit: 1, per: "hour", countFailures: false } }],
    });
    const token = await client.token();
    // First job fails at the upstream: its quota unit comes back, so the second one may run.
    t.gateway.mockUpstreams!.setFault("gmail", { mode: "status", status: 503, remaining: 1 });
    const failing = await submit(token);
    t.gateway.jobs!.start();
    expect((await finished(t.url, t.adminKey, failing)).error.code).toBe("upstream_error");
    const second = await submit(token);
    expect((await finished(t.url, t.adminKey, second)).status).toBe("succeeded");
    // The quota (1) is now used: a third is accepted (quota is counted when work runs) and fails when it runs.
    const third = await submit(token);
    expect((await finished(t.url, t.adminKey, third)).error).toMatchObject({ code: "quota_exceeded", status: 429 });
  });
});
