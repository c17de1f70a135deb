import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/client/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { Redactor } from "../../src/vault/index.js";

/**
 * An upstream's JSON answer is sent on as the text it came as (inside the `{data, meta}`
 * envelope) when it holds no secret; when it may hold one in any spelling, it is parsed, scrubbed
 * and serialised again. The upstream here is a real HTTP server playing SerpAPI, told per query
 * what to answer.
 */
const SECRET = "serp-pass-through-secret-0001/x";

describe("upstream JSON passed through, and scrubbed whenever it may hold a secret", () => {
  let upstream: http.Server;
  let t: TestGateway;
  let client: AgentClient;
  const answers = new Map<string, string>();
  let sent = 0;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      sent++;
      const q = new URL(req.url ?? "/", "http://x").searchParams.get("q") ?? "";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(answers.get(q) ?? "{}");
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    t = await startTestGateway({ UPSTREAM_MODE: "live", SERPAPI_BASE_URL: url, SSRF_ALLOW: "127.0.0.1/32" });
    await t.admin.putCredential("serpapi", SECRET);
    await allowEverything(t);
    ({ client } = await newAgent(t, { scopes: ["serpapi:search"] }));
  });
  afterAll(async () => {
    await t.close();
    await new Promise((resolve) => upstream.close(resolve));
  });

  async function search(q: string, answer: string) {
    answers.set(q, answer);
    const r = await request(`${t.url}/api/proxy`, {
      headers: { authorization: `Bearer ${await client.token()}` },
      body: { tool: "serpapi", action: "search", params: { q } },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    return r;
  }

  it("sends a clean answer's text as it came, on a miss and on a cache hit, and the envelope parses", async () => {
    const answer = '{ "organic_results" : [ {"title":"é ünïcode \\n line","position":1} ],\n  "n": 1.50 }';
    for (const cache of ["miss", "hit"]) {
      const r = await search("clean", answer);
      expect(r.text.startsWith(`{"data":${answer},"meta":`)).toBe(true);
      expect(r.json.data).toEqual(JSON.parse(answer));
      expect(r.json.meta.cache).toBe(cache);
    }
    expect(sent).toBe(1);
  });

  it.each([
    ["as is", `{"echo":"key=${SECRET}"}`],
    ["URL-encoded", `{"echo":"https://serpapi.test/search?api_key=${encodeURIComponent(SECRET)}"}`],
    ["with escaped slashes", `{"echo":"${SECRET.replace("/", "\\/")}"}`],
    [
      "spelt in \\u escapes",
      `{"echo":"${Array.from(SECRET)
        .map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
        .join("")}"}`,
    ],
    ["as a key", `{"${SECRET}":1}`],
  ])("scrubs a secret spelt %s, and still answers in the envelope", async (how, answer) => {
    const r = await search(`echo ${how}`, answer);
    expect(r.text).not.toContain(SECRET);
    expect(JSON.stringify(r.json)).not.toContain(SECRET);
    expect(JSON.stringify(r.json.data)).toContain("[REDACTED]");
    expect(r.json.meta.tool).toBe("serpapi");
  });
});

describe("Redactor.mayHoldSecret (unit)", () => {
  const redactor = new Redactor();
  redactor.setSecrets(['sk-with"quote', "plain-secret-value"]);

  it.each([
    ['{"a":"plain-secret-value"}', true],
    ['{"a":"plain%2Dsecret"}', false],
    ['{"a":"sk-with\\"quote"}', true],
    ['{"a":"sk-with"}', false],
    ['{"a":"\\u0070lain-secret-value"}', true],
    ['{"a":"https:\\/\\/x"}', true],
    ['{"a":"nothing here \\n \\" \\\\"}', false],
  ])("%s → %s", (text, expected) => {
    expect(redactor.mayHoldSecret(Buffer.from(text))).toBe(expected);
  });

  it("holds nothing when no secret is known", () => {
    expect(new Redactor().mayHoldSecret(Buffer.from('{"a":"\\u0041"}'))).toBe(false);
  });
});

describe("an answer kept as bytes survives an idempotency store that serialises it", () => {
  let t: TestGateway;
  let client: AgentClient;

  beforeAll(async () => {
    // The SQL store keeps results as JSON text, as Redis does: a replay reads them back parsed.
    t = await startTestGateway({ IDEMPOTENCY_STORE: "sql" });
    await storeBuiltinCredentials(t);
    await allowEverything(t);
    ({ client } = await newAgent(t, { scopes: ["gmail_send:send"] }));
  });
  afterAll(async () => t.close());

  it("replays a sent mail's answer from the store with 200 and the same data", async () => {
    const send = async () =>
      request(`${t.url}/api/proxy`, {
        headers: { authorization: `Bearer ${await client.token()}`, "idempotency-key": "passthrough-replay-1" },
        body: { tool: "gmail_send", action: "send", params: { to: "a@example.com", subject: "s", text: "t" } },
      });
    const first = await send();
    const replay = await send();
    expect(first.status, first.text).toBe(200);
    expect(replay.status, replay.text).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.json.data).toEqual(first.json.data);
  });
});
