import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminClient, type AgentClient } from "../../src/client/index.js";
import { http } from "../helpers/gateway.js";
import { postgresAvailable, POSTGRES_URL, redisAvailable, REDIS_URL, uniqueSchema } from "../helpers/services.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { newAgent } from "../helpers/agents.js";

const available = (await postgresAvailable()) && (await redisAvailable());

/** Two (then three) gateway processes sharing one PostgreSQL schema and one Redis prefix. */
describe.skipIf(!available)("scale-out: separate gateway processes behave as one", () => {
  const schema = uniqueSchema("scale");
  const shared = {
    DATABASE_URL: POSTGRES_URL,
    DATABASE_SCHEMA: schema,
    REDIS_URL,
    REDIS_PREFIX: `test:${schema}:`,
    GATEWAY_ADMIN_KEY: `admin-${randomBytes(16).toString("hex")}`,
    GATEWAY_MASTER_KEY: randomBytes(32).toString("base64"),
    UPSTREAM_MODE: "mock",
    CLUSTER_RECONCILE_MS: "1000",
    FF_ASYNC: "on",
    JOB_LEASE_MS: "1500",
  };
  const dirs: string[] = [];
  const processes: GatewayProcess[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;

  async function start(extra: Record<string, string> = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-scale-"));
    dirs.push(dir);
    const p = await startGatewayProcess({ ...shared, DATA_DIR: dir, ...extra });
    processes.push(p);
    return p;
  }

  beforeAll(async () => {
    // A's own mock upstream is slow, so a job it claims is still in flight when it is killed.
    // B runs no job worker, so A is the only one that can claim the job of the SIGKILL test.
    [a, b] = await Promise.all([start({ MOCK_LATENCY_MS: "4000" }), start({ FF_ASYNC: "off" })]);
    const admin = new AdminClient({ baseUrl: a.url, adminKey: shared.GATEWAY_ADMIN_KEY });
    for (const tool of ["serpapi", "openai", "gmail_send"]) await admin.putCredential(tool, `${tool}-shared-secret-1`);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const admin = (p: GatewayProcess) =>
    ({ url: p.url, adminKey: shared.GATEWAY_ADMIN_KEY, admin: new AdminClient({ baseUrl: p.url, adminKey: shared.GATEWAY_ADMIN_KEY }) }) as never;

  async function untilRefused(url: string, token: string, code: string, limitMs: number): Promise<number> {
    const started = performance.now();
    while (performance.now() - started < limitMs + 2000) {
      const r = await http(`${url}/api/tokens/self`, { headers: { authorization: `Bearer ${token}` } });
      if (r.status !== 200) {
        expect(r.json.error.code).toBe(code);
        return performance.now() - started;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`still accepted after ${limitMs + 2000} ms`);
  }

  it("a token revoked on A is refused on B within one second", async () => {
    const { client } = await newAgent(admin(a));
    const issued = await client.issueToken();
    expect((await http(`${b.url}/api/tokens/self`, { headers: { authorization: `Bearer ${issued.token}` } })).status).toBe(200);
    await new AdminClient({ baseUrl: a.url, adminKey: shared.GATEWAY_ADMIN_KEY }).revokeToken(issued.tokenId);
    const elapsed = await untilRefused(b.url, issued.token, "token_revoked", 1000);
    console.log(`revocation seen on the other instance after ${elapsed.toFixed(1)} ms`);
    expect(elapsed).toBeLessThan(1000);
  });

  it("an agent suspended on B is refused on A within one second", async () => {
    const { agent, client }: { agent: { id: string }; client: AgentClient } = await newAgent(admin(a));
    const token = await client.token();
    expect((await http(`${a.url}/api/tokens/self`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    await new AdminClient({ baseUrl: b.url, adminKey: shared.GATEWAY_ADMIN_KEY }).suspendAgent(agent.id);
    const elapsed = await untilRefused(a.url, token, "agent_suspended", 1000);
    expect(elapsed).toBeLessThan(1000);
  });

  it("a credential stored on A is used by B", async () => {
    const { client } = await newAgent(admin(b), { scopes: ["serpapi:search"] });
    const r = await client.call<any>("serpapi", "search", { q: "shared credential" });
    expect(r.data.search_metadata.status).toBe("Success");
  });

  it("a job accepted by A is completed by another instance after A is killed with SIGKILL", async () => {
    const { client } = await newAgent(admin(a), { scopes: ["serpapi:search"] });
    const token = await client.token();
    const accepted = await http(`${a.url}/api/jobs`, {
      headers: { authorization: `Bearer ${token}` },
      body: { tool: "serpapi", action: "search", params: { q: "survives kill -9" } },
    });
    expect(accepted.status, JSON.stringify(accepted.json)).toBe(202);
    const jobId = accepted.json.jobId as string;
    // Wait until A's worker holds it (its slow upstream keeps it busy), then kill A without any shutdown.
    for (let i = 0; i < 100; i++) {
      const s = await http(`${a.url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${shared.GATEWAY_ADMIN_KEY}` } });
      if (s.json.status !== "queued") break;
      await new Promise((res) => setTimeout(res, 20));
    }
    await a.kill();
    // A third instance with a worker (and a fast upstream) takes the job over once A's lease runs out.
    const c = await start();
    let final: any;
    for (let i = 0; i < 300; i++) {
      final = (await http(`${c.url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${shared.GATEWAY_ADMIN_KEY}` } })).json;
      if (final.status === "succeeded" || final.status === "failed") break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(final.status).toBe("succeeded");
    expect(final.result.data.search_parameters.q).toBe("survives kill -9");
    expect(final.attempts).toBe(2); // claimed by A, taken over after its lease ran out
  });
});
