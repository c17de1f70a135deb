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

/** An upstream that counts the messages it receives, keyed by the message's `ref`. */
function startMailer() {
  const received = new Map<string, number>();
  const server = httpServer.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const ref = (JSON.parse(body || "{}") as { ref?: string }).ref ?? "-";
      received.set(ref, (received.get(ref) ?? 0) + 1);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: `msg-${ref}` }));
    });
  });
  return {
    server,
    sends: (ref: string) => received.get(ref) ?? 0,
    listen: () => new Promise<string>((r) => server.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
  };
}

/** Two gateway processes on one PostgreSQL schema: an approval asked on A is decided on B and runs once. */
describe.skipIf(!available)("approvals across two gateway processes", () => {
  const schema = uniqueSchema("approvals_x");
  const adminKey = `admin-${randomBytes(16).toString("hex")}`;
  const shared = {
    DATABASE_URL: POSTGRES_URL,
    DATABASE_SCHEMA: schema,
    REDIS_URL,
    REDIS_PREFIX: `test:${schema}:`,
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
  const admin = { authorization: `Bearer ${adminKey}` };

  beforeAll(async () => {
    const mailerUrl = await mailer.listen();
    const start = () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-approvals-x-"));
      dirs.push(dir);
      return startGatewayProcess({ ...shared, DATA_DIR: dir });
    };
    [a, b] = await Promise.all([start(), start()]);
    const adminA = new AdminClient({ baseUrl: a.url, adminKey });
    await adminA.defineTool({ name: "mailer", baseUrl: mailerUrl, actions: { send: { method: "POST", path: "/send", params: { type: "object" } } } });
    await adminA.raw("POST", "/api/policies", {
      name: "mail-needs-approval",
      subject: { all: true },
      rules: [
        { effect: "allow", scopes: ["mailer:*"] },
        { effect: "allow", scopes: ["mailer:send"], requireApproval: { ttlSeconds: 600 } },
      ],
    });
    ({ client } = await newAgent({ url: a.url, adminKey, admin: adminA } as never, { scopes: ["mailer:send"] }));
    await until("B knows the tool and the policy", async () => {
      const tools = await http(`${b.url}/api/tools/generic`, { headers: admin });
      const policies = await http(`${b.url}/api/policies`, { headers: admin });
      return tools.text.includes('"mailer"') && policies.text.includes("mail-needs-approval");
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

  const ask = async (gateway: GatewayProcess, ref: string) => {
    const r = await http(`${gateway.url}/api/proxy`, {
      headers: { authorization: `Bearer ${await client.token()}` },
      body: { tool: "mailer", action: "send", params: { ref } },
    });
    expect(r.status, r.text).toBe(202);
    return r.json.approval.id as string;
  };
  const decide = (gateway: GatewayProcess, id: string, decision: "approve" | "deny") =>
    http(`${gateway.url}/api/approvals/${id}/${decision}`, { method: "POST", headers: admin });

  it("asked on A, seen and approved on B: executed there once with the result; A then answers 409", async () => {
    const ref = `ab-${randomBytes(4).toString("hex")}`;
    const id = await ask(a, ref);
    expect(mailer.sends(ref)).toBe(0);
    const seen = await http(`${b.url}/api/approvals/${id}`, { headers: admin });
    expect(seen.json).toMatchObject({ id, status: "pending", tool: "mailer" });
    const approved = await decide(b, id, "approve");
    expect(approved.status, approved.text).toBe(200);
    expect(approved.json).toMatchObject({ status: "executed", result: { status: 200 }, resultMeta: { tool: "mailer" } });
    expect(JSON.stringify(approved.json.result)).toContain(`msg-${ref}`);
    expect(mailer.sends(ref)).toBe(1);
    const again = await decide(a, id, "approve");
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe("approval_already_decided");
    const agentView = await http(`${a.url}/api/approvals/${id}`, { headers: { authorization: `Bearer ${await client.token()}` } });
    expect(agentView.json).toMatchObject({ status: "executed", decidedBy: "bootstrap-admin" });
  });

  it("many concurrent approvals and denials through both instances: exactly one decision wins, at most one send", async () => {
    const ref = `race-${randomBytes(4).toString("hex")}`;
    const id = await ask(b, ref);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => decide(i % 2 === 0 ? a : b, id, i % 3 === 0 ? "deny" : "approve")));
    const winners = answers.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    for (const r of answers.filter((x) => x.status !== 200)) expect(r.json.error.code).toBe("approval_already_decided");
    expect(mailer.sends(ref)).toBe(winners[0]!.json.status === "executed" ? 1 : 0);
    expect(["executed", "denied"]).toContain(winners[0]!.json.status);
  });
});
