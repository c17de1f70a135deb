import { randomBytes } from "node:crypto";
import fs from "node:fs";
import httpServer from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminClient, type AgentClient } from "../../src/client/index.js";
import { http } from "../helpers/gateway.js";
import { postgresAvailable, POSTGRES_URL, redisAvailable, REDIS_URL, uniqueSchema } from "../helpers/services.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { newAgent } from "../helpers/agents.js";

const available = (await postgresAvailable()) && (await redisAvailable());

/** Polls `check` until it is true or the deadline passes (no fixed sleeps). */
async function until(what: string, check: () => Promise<boolean> | boolean, deadlineMs = 15_000) {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A mail-sending upstream that counts what it receives, keyed by the message's `ref`. A message
 * with `hold: true` is answered only when the test releases it, so "the first call is still in
 * flight" is a state the test controls, not a race it hopes to win.
 */
function startMailer() {
  const received = new Map<string, number>();
  const held: (() => void)[] = [];
  const server = httpServer.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const message = JSON.parse(body || "{}") as { ref?: string; hold?: boolean };
      const ref = message.ref ?? "-";
      received.set(ref, (received.get(ref) ?? 0) + 1);
      const answer = () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: `msg-${ref}-${received.get(ref)}` }));
      };
      if (message.hold) held.push(answer);
      else answer();
    });
  });
  return {
    server,
    sends: (ref: string) => received.get(ref) ?? 0,
    heldCount: () => held.length,
    releaseAll: () => held.splice(0).forEach((answer) => answer()),
    listen: () => new Promise<string>((r) => server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
  };
}

/**
 * Two gateway processes share idempotency keys, through Redis or through PostgreSQL. The same Idempotency-Key sent through A and B makes one upstream send.
 */
describe.skipIf(!available).each([
  { backend: "Redis", store: "redis" },
  { backend: "PostgreSQL", store: "sql" },
])("idempotency keys across two gateway processes ($backend)", ({ store }) => {
  const schema = uniqueSchema("idem_x");
  const adminKey = `admin-${randomBytes(16).toString("hex")}`;
  const shared = {
    DATABASE_URL: POSTGRES_URL,
    DATABASE_SCHEMA: schema,
    // Redis carries the cluster bus in both runs; IDEMPOTENCY_STORE picks where keys are claimed.
    REDIS_URL,
    REDIS_PREFIX: `test:${schema}:`,
    IDEMPOTENCY_STORE: store,
    GATEWAY_ADMIN_KEY: adminKey,
    GATEWAY_MASTER_KEY: randomBytes(32).toString("base64"),
    UPSTREAM_MODE: "mock",
    SSRF_ALLOW: "127.0.0.1/32",
    CLUSTER_RECONCILE_MS: "500",
  };
  const mailer = startMailer();
  const dirs: string[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;
  let client: AgentClient;

  const start = async (extra: Record<string, string>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-idem-x-"));
    dirs.push(dir);
    return startGatewayProcess({ ...shared, DATA_DIR: dir, ...extra });
  };

  beforeAll(async () => {
    const mailerUrl = await mailer.listen();
    // A waits long for a first call in flight; B gives up quickly (409), so both paths are seen.
    a = await start({ IDEMPOTENCY_WAIT_MS: "10000" });
    b = await start({ IDEMPOTENCY_WAIT_MS: "300" });
    const admin = new AdminClient({ baseUrl: a.url, adminKey });
    await admin.defineTool({ name: "mailer", baseUrl: mailerUrl, actions: { send: { method: "POST", path: "/send", params: { type: "object" } } } });
    await admin.raw("POST", "/api/policies", { name: "mailer-allowed", subject: { all: true }, rules: [{ effect: "allow", scopes: ["mailer:*"] }] });
    ({ client } = await newAgent({ url: a.url, adminKey, admin } as never, { scopes: ["mailer:send"] }));
    const bAdmin = { authorization: `Bearer ${adminKey}` };
    await until("B knows the tool and the policy", async () => {
      const tools = await http(`${b.url}/api/tools/generic`, { headers: bAdmin });
      const policies = await http(`${b.url}/api/policies`, { headers: bAdmin });
      return tools.text.includes('"mailer"') && policies.text.includes("mailer-allowed");
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    mailer.server.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });

  const send = async (gateway: GatewayProcess, key: string, params: Record<string, unknown>) =>
    http(`${gateway.url}/api/proxy`, {
      headers: { authorization: `Bearer ${await client.token()}`, "idempotency-key": key },
      body: { tool: "mailer", action: "send", params },
    });

  it("sequentially: A sends, B replays A's result without sending", async () => {
    const ref = `seq-${randomBytes(4).toString("hex")}`;
    const first = await send(a, ref, { ref });
    expect(first.status, first.text).toBe(200);
    const second = await send(b, ref, { ref });
    expect(second.status, second.text).toBe(200);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.json.data).toEqual(first.json.data);
    expect(mailer.sends(ref)).toBe(1);
  });

  it("while B's call is in flight, A waits for it and replays its result: one send", async () => {
    const ref = `wait-${randomBytes(4).toString("hex")}`;
    const first = send(b, ref, { ref, hold: true });
    await until("the upstream holds B's message", () => mailer.heldCount() === 1);
    const second = send(a, ref, { ref, hold: true });
    mailer.releaseAll();
    const [r1, r2] = await Promise.all([first, second]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(r2.headers.get("idempotent-replayed")).toBe("true");
    expect(r2.json.data).toEqual(r1.json.data);
    expect(mailer.sends(ref)).toBe(1);
  });

  it("a repeat that cannot wait long enough gets 409 idempotency_in_flight, then the result once it is done", async () => {
    const ref = `busy-${randomBytes(4).toString("hex")}`;
    const first = send(a, ref, { ref, hold: true });
    await until("the upstream holds A's message", () => mailer.heldCount() === 1);
    const busy = await send(b, ref, { ref, hold: true });
    expect(busy.status).toBe(409);
    expect(busy.json.error.code).toBe("idempotency_in_flight");
    expect(busy.json.error.correlationId).toBeTypeOf("string");
    mailer.releaseAll();
    expect((await first).status).toBe(200);
    const later = await send(b, ref, { ref, hold: true });
    expect(later.status).toBe(200);
    expect(later.headers.get("idempotent-replayed")).toBe("true");
    expect(mailer.sends(ref)).toBe(1);
  });

  it("the same key with other parameters is refused on the other instance with 409 idempotency_conflict", async () => {
    const ref = `conflict-${randomBytes(4).toString("hex")}`;
    expect((await send(a, ref, { ref })).status).toBe(200);
    const other = await send(b, ref, { ref, extra: 1 });
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe("idempotency_conflict");
    expect(mailer.sends(ref)).toBe(1);
  });

  it("many concurrent repeats through both instances: exactly one send, every answer is the result or 409 in flight", async () => {
    const ref = `burst-${randomBytes(4).toString("hex")}`;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => send(i % 2 === 0 ? a : b, ref, { ref })));
    expect(mailer.sends(ref)).toBe(1);
    const ok = answers.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => JSON.stringify(r.json.data))).size).toBe(1);
    for (const r of answers.filter((x) => x.status !== 200)) expect(r.json.error.code).toBe("idempotency_in_flight");
  });
});
