import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/client/index.js";
import { startMockUpstreams, type MockUpstreams } from "../../src/mock-upstreams/server.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

/**
 * The canary: unique secrets are stored, many calls are driven through every outcome (success,
 * upstream error that echoes the credential, timeout, bad input, denial), and then every log line,
 * response body, audit row and the metrics text is scanned for any of them.
 */
describe("no secret ever leaves the gateway", () => {
  const canary = {
    serpapi: `serp-canary-${randomBytes(12).toString("hex")}`,
    openai: `sk-canary-${randomBytes(12).toString("hex")}`,
    gmail_send: `ya29.canary-${randomBytes(12).toString("hex")}`,
  };
  let mock: MockUpstreams;
  let t: TestGateway;
  let client: AgentClient;
  let agentPrivateKey: string;
  const responses: string[] = [];

  beforeAll(async () => {
    // OpenAI's valid key differs from the stored one, so it answers 401 and echoes the canary.
    mock = await startMockUpstreams({ validKeys: { serpapi: canary.serpapi, openai: "sk-something-else", gmail: canary.gmail_send } });
    t = await startTestGateway({
      UPSTREAM_MODE: "live",
      SERPAPI_BASE_URL: mock.url,
      OPENAI_BASE_URL: mock.url,
      GMAIL_BASE_URL: mock.url,
      SSRF_ALLOW: "127.0.0.1/32",
      UPSTREAM_TIMEOUT_MS: "300",
      LOG_LEVEL: "debug",
    });
    for (const [tool, secret] of Object.entries(canary)) responses.push(JSON.stringify(await t.admin.putCredential(tool, secret)));
    ({ client, privateKeyPem: agentPrivateKey } = await newAgent(t, { scopes: ["serpapi:search", "openai:chat", "gmail_send:send", "http_fetch:get"] }));
  });
  afterAll(async () => {
    await t.close();
    await mock.close();
  });

  async function drive(fn: () => Promise<unknown>) {
    try {
      responses.push(JSON.stringify(await fn()));
    } catch (err) {
      responses.push(JSON.stringify({ message: (err as Error).message, ...(err as object) }));
    }
  }

  it("drives success, upstream errors, timeouts, bad input and denials, then finds no canary anywhere", async () => {
    for (let i = 0; i < 5; i++) {
      await drive(() => client.call("serpapi", "search", { q: `canary run ${i}` }));
      await drive(() => client.call("openai", "chat", { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }));
      await drive(() => client.call("gmail_send", "send", { to: "a@example.com", subject: `s${i}`, text: "t" }));
      await drive(() => client.call("serpapi", "search", { q: "", bogus: canary.serpapi }));
      await drive(() => client.call("http_fetch", "get", { url: `${mock.url}/headers` }));
    }
    mock.setFault("serpapi", { mode: "hang", remaining: 2 });
    await drive(() => client.call("serpapi", "search", { q: "timeout" }));
    mock.setFault("gmail", { mode: "status", status: 500, remaining: 2 });
    await drive(() => client.call("gmail_send", "send", { to: "a@example.com", subject: "fails", text: "t" }));
    mock.setFault("gmail", { mode: "down", remaining: 1 });
    await drive(() => client.call("gmail_send", "send", { to: "a@example.com", subject: "reset", text: "t" }));
    await drive(() => http(`${t.url}/api/credentials`, { headers: { authorization: `Bearer ${t.adminKey}` } }).then((r) => r.text));
    await drive(() => http(`${t.url}/api/credentials/openai`, { headers: { authorization: `Bearer ${t.adminKey}` } }).then((r) => r.text));
    // A caller that sends a credential as its own bearer token must not see it echoed either.
    await drive(() =>
      http(`${t.url}/api/proxy`, { headers: { authorization: `Bearer ${canary.openai}` }, body: { tool: "openai", action: "chat", params: {} } }).then(
        (r) => r.text,
      ),
    );

    await t.gateway.audit.flush();
    const audit = await http(`${t.url}/api/audit?limit=1000`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(audit.status).toBe(200);
    expect(audit.json.records.length).toBeGreaterThan(20);
    const metrics = await http(`${t.url}/metrics`);

    const haystacks = { logs: t.logs.join("\n"), responses: responses.join("\n"), audit: audit.text, metrics: metrics.text };
    expect(haystacks.logs.length).toBeGreaterThan(1000);
    // The openai 401 did come back, with the key scrubbed.
    expect(haystacks.responses).toContain("credential_rejected");
    expect(haystacks.responses).toContain("[REDACTED]");
    for (const [where, text] of Object.entries(haystacks)) {
      for (const [tool, secret] of Object.entries(canary)) {
        expect(text.includes(secret), `${tool}'s credential found in ${where}`).toBe(false);
        expect(text.includes(secret.slice(0, 20)), `part of ${tool}'s credential found in ${where}`).toBe(false);
      }
      expect(text.includes(agentPrivateKey.split("\n")[1]!), `agent private key in ${where}`).toBe(false);
    }
  });
});
