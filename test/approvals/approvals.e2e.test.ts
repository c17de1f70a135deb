import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyCallback } from "../../src/jobs/callbacks.js";
import { http, startTestGateway, TestClock, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { startReceiver } from "../helpers/receiver.js";

const CALLBACK_SECRET = "approval-callback-secret-for-tests";
const GMAIL_SECRET = "ya29.approval-test-secret-0001";
const tokenIdOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")).jti as string;
const outside = (text = "hello") => ({ tool: "gmail_send", action: "send", params: { to: ["someone@outside.test"], subject: "quarterly numbers", text } });
const inside = { tool: "gmail_send", action: "send", params: { to: ["ops@example.com"], subject: "hi", text: "inside" } };

/** Mail to anyone outside example.com waits for a person; inside it goes at once. */
const MAIL_POLICY = {
  name: "mail-outside-needs-approval",
  subject: { all: true },
  rules: [
    { effect: "allow", scopes: ["gmail_send:send", "serpapi:search"] },
    {
      id: "outside-mail",
      effect: "allow",
      scopes: ["gmail_send:send"],
      guards: { "recipients.domain": { oneOf: ["example.com"] } },
      requireApproval: { ttlSeconds: 600, approvers: ["security-team"] },
    },
  ],
};

describe("approvals: calls held for a person, bound to their exact arguments", () => {
  let t: TestGateway;
  let hooks: Awaited<ReturnType<typeof startReceiver>>;
  const clock = new TestClock(Date.now());
  const admin = () => ({ authorization: `Bearer ${t.adminKey}` });
  const sent = () => t.gateway.mockUpstreams!.stats().gmailSent;

  beforeAll(async () => {
    hooks = await startReceiver();
    t = await startTestGateway(
      {
        UPSTREAM_MODE: "mock",
        SSRF_ALLOW: "127.0.0.1/32",
        JOB_CALLBACK_SECRET: CALLBACK_SECRET,
        APPROVAL_WEBHOOK_URL: `${hooks.url}/global`,
        APPROVAL_CONSOLE_URL: "https://console.example.test",
      },
      { now: clock.now },
    );
    await storeBuiltinCredentials(t, { gmail_send: GMAIL_SECRET });
    const r = await http(`${t.url}/api/policies`, { headers: admin(), body: MAIL_POLICY });
    expect(r.status, r.text).toBe(201);
  });
  afterAll(async () => {
    await t.close();
    await hooks.close();
  });

  const agent = async () => {
    const { client, agent } = await newAgent(t, { scopes: ["gmail_send:send", "serpapi:search"], now: clock.now });
    return { token: await client.token(), agentId: agent.id };
  };
  const ask = (token: string, body: unknown, headers: Record<string, string> = {}) =>
    http(`${t.url}/api/proxy`, { headers: { authorization: `Bearer ${token}`, ...headers }, body });
  const held = async (token: string, body: unknown = outside()) => {
    const r = await ask(token, body);
    expect(r.status, r.text).toBe(202);
    return r.json.approval as { id: string; status: string; expiresAt: string; argsHash: string };
  };
  const decide = (id: string, decision: "approve" | "deny", headers: Record<string, string> = admin(), body?: unknown) =>
    http(`${t.url}/api/approvals/${id}/${decision}`, { method: "POST", headers, ...(body === undefined ? {} : { body }) });

  it("a call inside the policy goes at once; one outside it is held: 202, Location, nothing sent", async () => {
    const { token } = await agent();
    const before = sent();
    expect((await ask(token, inside)).status).toBe(200);
    expect(sent()).toBe(before + 1);
    const r = await ask(token, outside());
    expect(r.status, r.text).toBe(202);
    expect(Object.keys(r.json)).toEqual(["approval"]);
    expect(r.json.approval).toMatchObject({ status: "pending", argsHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(Date.parse(r.json.approval.expiresAt)).toBe(clock.now() + 600_000);
    expect(r.headers.get("location")).toBe(`/api/approvals/${r.json.approval.id}`);
    expect(sent()).toBe(before + 1);
  });

  it("the MCP door holds the same way: it runs the same road (road.handle with door mcp), audited with its door", async () => {
    const { token, agentId } = await agent();
    const before = sent();
    const out = await t.gateway.road.handle({ door: "mcp", ...outside(), rawToken: token, correlationId: `mcp-held-${agentId}` });
    if (!("held" in out)) throw new Error("expected the call to be held");
    expect(out.held).toMatchObject({ status: "pending", argsHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(sent()).toBe(before);
    const approved = await decide(out.held.id, "approve");
    expect(approved.json.status).toBe("executed");
    expect(sent()).toBe(before + 1);
    await t.gateway.audit.flush();
    const records = (await t.gateway.store.queryAudit({ agentId, limit: 100 })).filter((x) => x.correlationId === `mcp-held-${agentId}`);
    expect(records.map((x) => [x.door, x.decision]).sort()).toEqual([
      ["approval", "allow"],
      ["approval", "approval_granted"],
      ["mcp", "pending_approval"],
    ]);
  });

  it("the OpenAI-compatible door cannot say 'held': a call there that needs approval is refused, nothing stored", async () => {
    const { token, agentId } = await agent();
    const refused = await t.gateway.road.handle({ door: "openai", ...outside(), rawToken: token, correlationId: `openai-${agentId}` }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "approval_required", status: 403 });
    expect((await http(`${t.url}/api/approvals?agentId=${agentId}`, { headers: admin() })).json.approvals).toEqual([]);
  });

  it("pending → approved → executed with the result; the agent reads it; a second decision is 409", async () => {
    const { token, agentId } = await agent();
    const approval = await held(token);
    const mine = await http(`${t.url}/api/approvals/${approval.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(mine.status).toBe(200);
    expect(mine.json).toMatchObject({
      id: approval.id,
      status: "pending",
      agentId,
      tool: "gmail_send",
      action: "send",
      argsHash: approval.argsHash,
      approvers: ["security-team"],
      decidedAt: null,
      decidedBy: null,
    });
    expect(mine.json.reason).toContain("recipients.domain");
    expect(mine.json.rule).toMatchObject({ policyName: MAIL_POLICY.name, ruleId: "outside-mail" });
    const before = sent();
    clock.advance(42_000);
    const approved = await decide(approval.id, "approve", admin(), { reason: "expected mail" });
    expect(approved.status, approved.text).toBe(200);
    expect(approved.json).toMatchObject({ status: "executed", decidedBy: "bootstrap-admin", decisionReason: "expected mail" });
    expect(approved.json.result.id).toEqual(expect.any(String));
    expect(approved.json.resultMeta).toMatchObject({ tool: "gmail_send", action: "send", correlationId: expect.any(String) });
    expect(sent()).toBe(before + 1);
    const read = await http(`${t.url}/api/approvals/${approval.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.json).toMatchObject({ status: "executed", result: approved.json.result });
    for (const again of ["approve", "deny"] as const) {
      const r = await decide(approval.id, again);
      expect(r.status).toBe(409);
      expect(r.json.error).toMatchObject({ code: "approval_already_decided", correlationId: expect.any(String) });
    }
    expect(sent()).toBe(before + 1);
  });

  it("the SDK's call(…, { waitForApproval }) waits for the person and returns the executed call's data, or raises approval_denied", async () => {
    const { client, agent: a } = await newAgent(t, { scopes: ["gmail_send:send"], now: clock.now });
    const pendingFor = async () => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const list = await http(`${t.url}/api/approvals?agentId=${a.id}&status=pending`, { headers: admin() });
        if (list.json.approvals.length > 0) return list.json.approvals[0].id as string;
        if (Date.now() > deadline) throw new Error("the SDK's call was never held");
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const before = sent();
    const waiting = client.call<{ id: string }>("gmail_send", "send", outside().params, { waitForApproval: { pollMs: 20 } });
    expect((await decide(await pendingFor(), "approve")).json.status).toBe("executed");
    const done = await waiting;
    expect(done.data.id).toEqual(expect.any(String));
    expect(sent()).toBe(before + 1);
    const refused = client.call("gmail_send", "send", outside().params, { waitForApproval: { pollMs: 20 } }).catch((e: unknown) => e);
    await decide(await pendingFor(), "deny", admin(), { reason: "not today" });
    expect(await refused).toMatchObject({ code: "approval_denied", message: expect.stringContaining("not today") });
    const pending = await client.call("gmail_send", "send", outside().params).catch((e: unknown) => e);
    expect(pending).toMatchObject({ code: "approval_pending", details: { approval: { status: "pending" } } });
    expect(sent()).toBe(before + 1);
  });

  it("deny ends it: nothing sent, the agent sees denied with the reason", async () => {
    const { token } = await agent();
    const approval = await held(token);
    const before = sent();
    const denied = await decide(approval.id, "deny", admin(), { reason: "not to that address" });
    expect(denied.json).toMatchObject({ status: "denied", decisionReason: "not to that address" });
    expect(denied.json.result).toBeUndefined();
    expect((await decide(approval.id, "approve")).status).toBe(409);
    expect(sent()).toBe(before);
  });

  it("an agent cannot decide (403, its own approval included) nor list (401); without a key it is 401", async () => {
    const { token } = await agent();
    const approval = await held(token);
    for (const d of ["approve", "deny"] as const) {
      const r = await decide(approval.id, d, { authorization: `Bearer ${token}` });
      expect(r.status).toBe(403);
      expect(r.json.error.code).toBe("operator_forbidden");
    }
    // Listing is for people only: an agent token is not the admin key (the route declares ADMIN_ONLY).
    expect((await http(`${t.url}/api/approvals`, { headers: { authorization: `Bearer ${token}` } })).json.error.code).toBe("admin_unauthorized");
    expect((await decide(approval.id, "approve", {})).status).toBe(401);
    expect((await decide(approval.id, "approve", { authorization: "Bearer not-a-key" })).status).toBe(401);
    // Another agent cannot even see it.
    const other = await agent();
    const r = await http(`${t.url}/api/approvals/${approval.id}`, { headers: { authorization: `Bearer ${other.token}` } });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe("approval_not_found");
    expect((await http(`${t.url}/api/approvals/${approval.id}`, { headers: admin() })).json.status).toBe("pending");
  });

  it("the approved call is the stored one: the decision cannot carry parameters, and unknown ids are 404", async () => {
    const { token } = await agent();
    const approval = await held(token, outside("original text"));
    const before = sent();
    const tampered = await decide(approval.id, "approve", admin(), { params: { to: ["attacker@evil.test"] } });
    expect(tampered.status).toBe(400);
    expect(tampered.json.error).toMatchObject({ code: "invalid_request", details: { field: "params" } });
    expect(sent()).toBe(before);
    expect((await decide("apr_00000000000000000000000000000000", "approve")).json.error.code).toBe("approval_not_found");
    expect((await decide(approval.id, "approve", admin(), { reason: 7 })).status).toBe(400);
    const ok = await decide(approval.id, "approve");
    expect(ok.json.status).toBe("executed");
    expect(sent()).toBe(before + 1);
  });

  it("a stored call changed in the database is refused at execution: nothing is sent", async () => {
    const { token } = await agent();
    const a = await held(token, outside("first"));
    const b = await held(token, outside("second"));
    const driver = t.gateway.store.driver;
    // Someone with database access swaps in another approval's sealed call (bound to its own id).
    const other = (await driver.all<{ sealed_call: string }>(`SELECT sealed_call FROM approvals WHERE id = $1`, [b.id]))[0]!;
    await driver.run(`UPDATE approvals SET sealed_call = $2 WHERE id = $1`, [a.id, other.sealed_call]);
    // Or rewrites the hash to match other arguments.
    await driver.run(`UPDATE approvals SET args_hash = $2 WHERE id = $1`, [b.id, "0".repeat(64)]);
    const before = sent();
    for (const id of [a.id, b.id]) {
      const r = await decide(id, "approve");
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ status: "failed", error: { code: "internal_error" } });
    }
    expect(sent()).toBe(before);
  });

  it("a decision after expiresAt is 410 approval_expired; the sweeper marks the others expired", async () => {
    const { token } = await agent();
    const late = await held(token);
    const swept = await held(token);
    clock.advance(600_000);
    const r = await decide(late.id, "approve");
    expect(r.status).toBe(410);
    expect(r.json.error.code).toBe("approval_expired");
    expect((await http(`${t.url}/api/approvals/${late.id}`, { headers: admin() })).json.status).toBe("expired");
    await t.gateway.approvals.sweep();
    expect((await http(`${t.url}/api/approvals/${swept.id}`, { headers: admin() })).json.status).toBe("expired");
    expect((await decide(swept.id, "deny")).status).toBe(410);
  });

  it("an approved call whose instance stopped before recording the outcome is failed by the sweeper, not run again", async () => {
    const { token } = await agent();
    const a = await held(token);
    // What an instance killed mid-run leaves behind: the decision recorded, no outcome.
    await t.gateway.store.driver.run(`UPDATE approvals SET status = 'approved', decided_at = $2, decided_by = 'admin' WHERE id = $1`, [a.id, clock.now()]);
    const before = sent();
    await t.gateway.approvals.sweep();
    expect((await http(`${t.url}/api/approvals/${a.id}`, { headers: admin() })).json.status).toBe("approved");
    clock.advance(t.gateway.config.upstreamDeadlineMs + 300_001);
    await t.gateway.approvals.sweep();
    const view = await http(`${t.url}/api/approvals/${a.id}`, { headers: admin() });
    expect(view.json).toMatchObject({ status: "failed", error: { code: "internal_error" } });
    expect(view.json.error.message).toContain("may or may not have been sent");
    expect(sent()).toBe(before);
  });

  it("re-checked when approved: a suspended agent, a revoked token or a policy change ends it failed, nothing sent", async () => {
    const suspended = await agent();
    const s = await held(suspended.token);
    await http(`${t.url}/api/agents/${suspended.agentId}/suspend`, { method: "POST", headers: admin() });
    const revoked = await agent();
    const r = await held(revoked.token);
    await http(`${t.url}/api/tokens/${tokenIdOf(revoked.token)}/revoke`, { method: "POST", headers: admin() });
    const changed = await agent();
    const c = await held(changed.token);
    const policy = await http(`${t.url}/api/policies`, {
      headers: admin(),
      body: { name: `no-mail-${changed.agentId}`, subject: { agentId: changed.agentId }, rules: [{ effect: "deny", scopes: ["gmail_send:send"] }] },
    });
    expect(policy.status).toBe(201);
    const before = sent();
    expect((await decide(s.id, "approve")).json).toMatchObject({ status: "failed", error: { code: "agent_suspended", status: 403 } });
    expect((await decide(r.id, "approve")).json).toMatchObject({ status: "failed", error: { code: "token_revoked", status: 401 } });
    expect((await decide(c.id, "approve")).json).toMatchObject({ status: "failed", error: { code: "scope_denied", status: 403 } });
    expect(sent()).toBe(before);
  });

  it("a call policy or limits refuse is refused, not held; quota is taken when the approved call runs", async () => {
    const { token, agentId } = await agent();
    // The default assistant policy caps recipients at 20: that refusal wins over the approval.
    const many = Array.from({ length: 21 }, (_, i) => `r${i}@outside.test`);
    const refused = await ask(token, { tool: "gmail_send", action: "send", params: { to: many, subject: "s", text: "t" } });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe("guard_failed");
    await http(`${t.url}/api/policies`, {
      headers: admin(),
      body: { name: `one-mail-${agentId}`, subject: { agentId }, rules: [{ effect: "allow", scopes: ["gmail_send:send"], quota: { limit: 1, per: "hour" } }] },
    });
    const waiting = await held(token); // holding uses no quota…
    expect((await ask(token, inside)).status).toBe(200); // …so this one may use it
    expect((await ask(token, inside)).json.error.code).toBe("quota_exceeded");
    const before = sent();
    const ran = await decide(waiting.id, "approve");
    expect(ran.json).toMatchObject({ status: "failed", error: { code: "quota_exceeded", status: 429 } });
    expect(sent()).toBe(before);
  });

  it("notifies the webhook, signed, with a readable summary and no secret; the agent's callback gets the result, signed", async () => {
    const { token, agentId } = await agent();
    const r = await ask(token, { ...outside(`the key is ${GMAIL_SECRET}`), callbackUrl: `${hooks.url}/agent-callback` });
    expect(r.status, r.text).toBe(202);
    const id = r.json.approval.id as string;
    const hook = await hooks.waitFor((h) => h.path === "/global" && h.headers["x-gateway-approval-id"] === id);
    expect(verifyCallback(Buffer.from(CALLBACK_SECRET), hook.body, String(hook.headers["x-gateway-signature"]), Math.floor(clock.now() / 1000))).toBe(true);
    expect(verifyCallback(Buffer.from("wrong-secret"), hook.body, String(hook.headers["x-gateway-signature"]), Math.floor(clock.now() / 1000))).toBe(false);
    const body = JSON.parse(hook.body);
    expect(body).toMatchObject({ type: "approval.requested", approval: { id, agentId, tool: "gmail_send", action: "send", status: "pending" } });
    expect(body.summary).toContain(`agent ${agentId} wants to call gmail_send:send`);
    expect(body.summary).toContain(`https://console.example.test/approvals/${id}?decide=approve`);
    expect(body.summary).toContain("someone@outside.test");
    expect(hook.body).not.toContain(GMAIL_SECRET);
    const view = await http(`${t.url}/api/approvals/${id}`, { headers: admin() });
    expect(view.text).not.toContain(GMAIL_SECRET);
    expect(view.json.params.text).toContain("[REDACTED]");

    await decide(id, "approve");
    const callback = await hooks.waitFor((h) => h.path === "/agent-callback" && h.headers["x-gateway-approval-id"] === id);
    expect(verifyCallback(Buffer.from(CALLBACK_SECRET), callback.body, String(callback.headers["x-gateway-signature"]), Math.floor(clock.now() / 1000))).toBe(
      true,
    );
    expect(JSON.parse(callback.body).approval).toMatchObject({ id, status: "executed" });
    expect(t.logs.join("")).not.toContain(GMAIL_SECRET);
  });

  it("a policy's own webhook in Slack format gets a signed {text} summary, besides the global one", async () => {
    const { token, agentId } = await agent();
    const policy = await http(`${t.url}/api/policies`, {
      headers: admin(),
      body: {
        name: `slack-${agentId}`,
        subject: { agentId },
        rules: [
          {
            effect: "allow",
            scopes: ["serpapi:search"],
            requireApproval: { webhookUrl: `${hooks.url}/slack`, webhookFormat: "slack", approvers: ["research-leads"] },
          },
        ],
      },
    });
    expect(policy.status, policy.text).toBe(201);
    const r = await ask(token, { tool: "serpapi", action: "search", params: { q: "sk-leaked-looking-value-123456", location: "Toronto" } });
    expect(r.status, r.text).toBe(202);
    const id = r.json.approval.id as string;
    const slack = await hooks.waitFor((h) => h.path === "/slack" && h.headers["x-gateway-approval-id"] === id);
    expect(verifyCallback(Buffer.from(CALLBACK_SECRET), slack.body, String(slack.headers["x-gateway-signature"]), Math.floor(clock.now() / 1000))).toBe(true);
    const body = JSON.parse(slack.body);
    expect(Object.keys(body)).toEqual(["text"]);
    expect(body.text).toContain(`agent ${agentId} wants to call serpapi:search`);
    expect(body.text).toContain("Toronto");
    expect(body.text).toContain('"q":"[REDACTED]"');
    expect(body.text).toContain("Approvers: research-leads");
    expect(body.text).not.toContain("sk-leaked-looking-value");
    await hooks.waitFor((h) => h.path === "/global" && h.headers["x-gateway-approval-id"] === id);
  });

  it("a webhook to an address the SSRF judge refuses is never contacted: the approval still waits, the failure is logged", async () => {
    const { token, agentId } = await agent();
    await http(`${t.url}/api/policies`, {
      headers: admin(),
      body: {
        name: `internal-hook-${agentId}`,
        subject: { agentId },
        rules: [{ effect: "allow", scopes: ["serpapi:search"], requireApproval: { webhookUrl: "http://10.20.30.40/hook" } }],
      },
    });
    const r = await ask(token, { tool: "serpapi", action: "search", params: { q: "x" } });
    expect(r.status).toBe(202);
    const id = r.json.approval.id as string;
    const deadline = Date.now() + 15_000;
    const logged = () => t.logs.some((l) => l.includes(id) && l.includes("could not be delivered") && /blocked|private|not allowed|refused/i.test(l));
    while (!logged()) {
      if (Date.now() > deadline) throw new Error(`no delivery failure logged for ${id}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    expect((await http(`${t.url}/api/approvals/${id}`, { headers: admin() })).json.status).toBe("pending");
  });

  it("a callback URL the SSRF judge refuses is refused before anything is held", async () => {
    const { token } = await agent();
    const r = await ask(token, { ...outside(), callbackUrl: "http://169.254.169.254/latest" });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe("ssrf_blocked");
  });

  it("audits the request, the decision and the execution as three records with one correlation id", async () => {
    const { token, agentId } = await agent();
    const r = await ask(token, outside(), { "x-correlation-id": `approval-audit-${agentId}` });
    expect(r.status).toBe(202);
    await decide(r.json.approval.id, "approve", admin(), { reason: "fine" });
    await t.gateway.audit.flush();
    const records = (await t.gateway.store.queryAudit({ agentId, limit: 100 })).filter((x) => x.correlationId === `approval-audit-${agentId}`);
    expect(records.map((x) => [x.door, x.decision, x.status]).sort()).toEqual([
      ["approval", "allow", 200],
      ["approval", "approval_granted", 200],
      ["rest", "pending_approval", 202],
    ]);
    expect(records.find((x) => x.decision === "approval_granted")!.reason).toContain(`approval ${r.json.approval.id} approved by bootstrap-admin: fine`);
  });

  it("explain says when a call would need approval and which rule asks; a malformed requireApproval is a 400 naming the field", async () => {
    const { agentId } = await agent();
    const explain = (params: unknown) =>
      http(`${t.url}/api/policies/explain`, { headers: admin(), body: { agentId, tool: "gmail_send", action: "send", params } });
    const held = await explain(outside().params);
    expect(held.json).toMatchObject({
      decision: "approval_required",
      approval: { rule: { policyName: MAIL_POLICY.name, ruleId: "outside-mail" }, ttlSeconds: 600, approvers: ["security-team"] },
    });
    expect((await explain(inside.params)).json.decision).toBe("allow");
    const bad = await http(`${t.url}/api/policies`, {
      headers: admin(),
      body: { name: "bad-approval", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"], requireApproval: { ttlSeconds: 999_999_999 } }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: "policy_invalid", details: { field: "rules[0].requireApproval.ttlSeconds" } });
  });

  it("bad input to the approval routes is a 4xx with a stable code and the correlation id, never a 5xx", async () => {
    const { token } = await agent();
    const approval = await held(token);
    const post = (id: string, rawBody?: string, contentType = "application/json") =>
      http(`${t.url}/api/approvals/${encodeURIComponent(id)}/approve`, {
        method: "POST",
        headers: { ...admin(), ...(rawBody === undefined ? {} : { "content-type": contentType }) },
        ...(rawBody === undefined ? {} : { rawBody }),
      });
    const cases = [
      await post(approval.id, "[1,2]"),
      await post(approval.id, '"approve"'),
      await post(approval.id, "{not json"),
      await post(approval.id, JSON.stringify({ reason: "x".repeat(501) })),
      await post(approval.id, "reason=x", "application/x-www-form-urlencoded"),
      await post("x".repeat(65)),
      await http(`${t.url}/api/approvals/${"y".repeat(65)}`, { headers: admin() }),
      await http(`${t.url}/api/approvals?unknown=1`, { headers: admin() }),
    ];
    for (const r of cases) {
      expect(r.status, r.text).toBeGreaterThanOrEqual(400);
      expect(r.status, r.text).toBeLessThan(500);
      expect(r.json.error.code).toEqual(expect.any(String));
      expect(r.json.error.correlationId).toEqual(expect.any(String));
    }
    expect((await http(`${t.url}/api/approvals/${approval.id}`, { headers: admin() })).json.status).toBe("pending");
    expect((await post(approval.id, "null")).json.status).toBe("executed");
  });

  it("lists with filters and a cursor (admin)", async () => {
    const { token, agentId } = await agent();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(1);
      ids.push((await held(token)).id);
    }
    const first = await http(`${t.url}/api/approvals?agentId=${agentId}&status=pending&limit=2`, { headers: admin() });
    expect(first.status, first.text).toBe(200);
    expect(first.json.approvals.map((a: { id: string }) => a.id)).toEqual([ids[2], ids[1]]);
    const next = await http(`${t.url}/api/approvals?agentId=${agentId}&status=pending&limit=2&cursor=${first.json.nextCursor}`, { headers: admin() });
    expect(next.json.approvals.map((a: { id: string }) => a.id)).toEqual([ids[0]]);
    expect(next.json.nextCursor).toBeNull();
    expect(first.json.approvals[0]).not.toHaveProperty("sealedCall");
    for (const bad of ["status=maybe", "limit=0", "limit=x", "cursor=nonsense", "tool="]) {
      const r = await http(`${t.url}/api/approvals?${bad}`, { headers: admin() });
      expect(r.status, bad).toBe(400);
      expect(r.json.error.correlationId).toEqual(expect.any(String));
    }
  });

  it("counts approvals in the metrics: requested, decisions, the pending gauge and the wait", async () => {
    await t.gateway.approvals.sweep();
    const text = await t.gateway.metrics.text();
    expect(text).toMatch(/gateway_approvals_total\{tool="gmail_send",decision="requested"\} [1-9]/);
    expect(text).toMatch(/gateway_approvals_total\{tool="gmail_send",decision="executed"\} [1-9]/);
    expect(text).toMatch(/gateway_approvals_total\{tool="gmail_send",decision="denied"\} [1-9]/);
    expect(text).toMatch(/gateway_approvals_total\{tool="gmail_send",decision="expired"\} [1-9]/);
    const pending = Number(/^gateway_approvals_pending (\d+)/m.exec(text)?.[1]);
    expect(pending).toBe(await t.gateway.store.driver.all<{ n: number }>(`SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending'`).then((r) => r[0]!.n));
    expect(text).toMatch(/gateway_approval_wait_seconds_bucket\{le="60",decision="approved"\} [1-9]/);
  });
});
