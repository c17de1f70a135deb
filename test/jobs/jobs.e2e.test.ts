import http from "node:http";
import type { AddressInfo } from "node:net";
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/client/index.js";
import { verifyCallback } from "../../src/jobs/callbacks.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

async function waitForJob(url: string, token: string, jobId: string, until: (s: string) => boolean = (s) => s === "succeeded" || s === "failed") {
  for (let i = 0; i < 200; i++) {
    const r = await request(`${url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status === 200 && until(r.json.status)) return r.json;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`job ${jobId} did not finish`);
}

describe("async jobs (FF_ASYNC=on, embedded store)", () => {
  let t: TestGateway;
  let client: AgentClient;
  let token: string;
  let receiver: http.Server;
  let receiverUrl: string;
  const received: { body: string; signature: string }[] = [];

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ body, signature: String(req.headers["x-gateway-signature"]) });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    t = await startTestGateway({ FF_ASYNC: "on", SSRF_ALLOW: "127.0.0.1/32", JOB_CALLBACK_SECRET: "callback-secret-for-tests" });
    await storeBuiltinCredentials(t);
    ({ client } = await newAgent(t, { scopes: ["serpapi:search", "gmail_send:send"] }));
    token = await client.token();
  });
  afterAll(async () => {
    await t.close();
    receiver.close();
  });

  const submit = (body: unknown, headers: Record<string, string> = {}) =>
    request(`${t.url}/api/jobs`, { headers: { authorization: `Bearer ${token}`, ...headers }, body });

  it("accepts a call with 202 and runs it to success, result and timings included", async () => {
    const r = await submit({ tool: "serpapi", action: "search", params: { q: "async search" } });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ status: "queued" });
    expect(r.headers.get("location")).toBe(`/api/jobs/${r.json.jobId}`);
    const done = await waitForJob(t.url, token, r.json.jobId);
    expect(done.status).toBe("succeeded");
    expect(done.attempts).toBe(1);
    expect(done.result.data.search_parameters.q).toBe("async search");
    expect(done.result.meta.tool).toBe("serpapi");
    expect(Date.parse(done.finishedAt)).toBeGreaterThanOrEqual(Date.parse(done.startedAt));
  });

  it("refuses a denied or malformed call at once, without queueing it", async () => {
    const denied = await submit({ tool: "openai", action: "chat", params: { model: "gpt-4o", messages: [{ role: "user", content: "x" }] } });
    expect(denied.status).toBe(403);
    const bad = await submit({ tool: "serpapi", action: "search", params: {} });
    expect(bad.status).toBe(400);
    const noToken = await request(`${t.url}/api/jobs`, { body: { tool: "serpapi", action: "search", params: { q: "x" } } });
    expect(noToken.status).toBe(401);
    const ssrf = await submit({ tool: "serpapi", action: "search", params: { q: "x" }, callbackUrl: "http://169.254.169.254/hook" });
    expect(ssrf.status).toBe(403);
    expect(ssrf.json.error.code).toBe("ssrf_blocked");
    expect((await t.gateway.jobs!["o"].store.counts()).queued).toBe(0);
  });

  it("records an upstream failure as a failed job with the error code", async () => {
    t.gateway.mockUpstreams!.setFault("gmail", { mode: "status", status: 400, remaining: 1 });
    const r = await submit({ tool: "gmail_send", action: "send", params: { to: "a@example.com", subject: "s", text: "t" } });
    const done = await waitForJob(t.url, token, r.json.jobId);
    expect(done.status).toBe("failed");
    expect(done.error).toMatchObject({ code: "upstream_client_error", status: 400 });
  });

  it("notifies the callback URL with a signature the receiver can verify", async () => {
    const r = await submit({ tool: "serpapi", action: "search", params: { q: "callback" }, callbackUrl: receiverUrl });
    await waitForJob(t.url, token, r.json.jobId);
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    const hook = received.at(-1)!;
    expect(JSON.parse(hook.body)).toMatchObject({ jobId: r.json.jobId, status: "succeeded" });
    const secret = Buffer.from("callback-secret-for-tests");
    expect(verifyCallback(secret, hook.body, hook.signature, Math.floor(Date.now() / 1000))).toBe(true);
    expect(verifyCallback(secret, hook.body.replace("succeeded", "failed"), hook.signature, Math.floor(Date.now() / 1000))).toBe(false);
    expect(verifyCallback(Buffer.from("wrong"), hook.body, hook.signature, Math.floor(Date.now() / 1000))).toBe(false);
  });

  it("shows a job only to its agent and the admin", async () => {
    const r = await submit({ tool: "serpapi", action: "search", params: { q: "mine" } });
    const { client: other } = await newAgent(t, { scopes: ["serpapi:search"] });
    const peek = await request(`${t.url}/api/jobs/${r.json.jobId}`, { headers: { authorization: `Bearer ${await other.token()}` } });
    expect(peek.status).toBe(404);
    expect(peek.json.error.code).toBe("job_not_found");
    const admin = await request(`${t.url}/api/jobs/${r.json.jobId}`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(admin.status).toBe(200);
  });

  it("stores the call's parameters sealed, never in clear", async () => {
    const marker = `private-query-${Date.now()}`;
    const r = await submit({ tool: "serpapi", action: "search", params: { q: marker } });
    await waitForJob(t.url, token, r.json.jobId);
    const rows = await t.gateway.store.driver.all<{ sealed_call: string }>(`SELECT sealed_call FROM jobs WHERE id = $1`, [r.json.jobId]);
    expect(rows[0]!.sealed_call).not.toContain(marker);
  });
});

describe("async jobs survive a restart", () => {
  it("a job queued before a clean stop is run by the next start on the same data", async () => {
    const a = await startTestGateway({ FF_ASYNC: "on" });
    const dataDir = a.dataDir;
    await storeBuiltinCredentials(a);
    const { client } = await newAgent(a, { scopes: ["serpapi:search"] });
    const token = await client.token();
    await a.gateway.jobs!.stop(); // the worker is gone: the job stays queued
    const r = await request(`${a.url}/api/jobs`, {
      headers: { authorization: `Bearer ${token}` },
      body: { tool: "serpapi", action: "search", params: { q: "after restart" } },
    });
    expect(r.status).toBe(202);
    await a.gateway.close(); // keep the data dir
    const b = await startTestGateway({ FF_ASYNC: "on", DATA_DIR: dataDir });
    try {
      const done = await waitForJob(b.url, b.adminKey, r.json.jobId);
      expect(done.status).toBe("succeeded");
      expect(done.result.data.search_parameters.q).toBe("after restart");
    } finally {
      await b.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("is off by default, and says so", async () => {
    const t = await startTestGateway();
    try {
      const r = await request(`${t.url}/api/jobs`, { body: { tool: "serpapi", action: "search", params: { q: "x" } } });
      expect(r.status).toBe(404);
      expect(r.json.error.code).toBe("feature_disabled");
    } finally {
      await t.close();
    }
  });
});
