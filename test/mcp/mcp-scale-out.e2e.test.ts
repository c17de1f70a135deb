import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { postgresAvailable, POSTGRES_URL, redisAvailable, REDIS_URL, uniqueSchema } from "../helpers/services.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { connectWithAgentKey, FetchLog } from "../helpers/mcp.js";

const available = (await postgresAvailable()) && (await redisAvailable());

/**
 * A round-robin load balancer: a real HTTP proxy that sends each request to the next backend, so
 * consecutive requests of one MCP session land on different gateway processes.
 */
async function startRoundRobin(backends: string[]) {
  let next = 0;
  const served: string[] = [];
  const server = http.createServer((req, res) => {
    const target = new URL(backends[next++ % backends.length]!);
    served.push(`${req.method} ${req.url} -> ${target.port}`);
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => {
      res.writeHead(502).end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.skipIf(!available)("MCP across instances: two gateway processes behind a load balancer serve one session", () => {
  const schema = uniqueSchema("mcp");
  const shared = {
    DATABASE_URL: POSTGRES_URL,
    DATABASE_SCHEMA: schema,
    REDIS_URL,
    REDIS_PREFIX: `test:${schema}:`,
    GATEWAY_ADMIN_KEY: `admin-${randomBytes(16).toString("hex")}`,
    GATEWAY_MASTER_KEY: randomBytes(32).toString("base64"),
    UPSTREAM_MODE: "mock",
  };
  const dirs: string[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;
  let lb: Awaited<ReturnType<typeof startRoundRobin>>;

  beforeAll(async () => {
    const start = async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-mcp-scale-"));
      dirs.push(dir);
      return startGatewayProcess({ ...shared, DATA_DIR: dir });
    };
    // One after the other: both would race to install the schema and the default policies.
    a = await start();
    b = await start();
    lb = await startRoundRobin([a.url, b.url]);
    const admin = new AdminClient({ baseUrl: a.url, adminKey: shared.GATEWAY_ADMIN_KEY });
    await admin.putCredential("serpapi", "serpapi-shared-secret-1");
  }, 90_000);
  afterAll(async () => {
    await lb?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("signs in, lists and calls tools with every request alternating between the two processes", async () => {
    const admin = new AdminClient({ baseUrl: b.url, adminKey: shared.GATEWAY_ADMIN_KEY });
    const pair = generateAgentKeyPair("EdDSA");
    const created = await admin.createAgent({ name: `mcp-lb-${randomUUID().slice(0, 8)}`, role: "researcher", publicKey: pair.publicKeyPem });
    const log = new FetchLog();
    const { client } = await connectWithAgentKey(lb.url, { agentId: created.id, privateKeyPem: pair.privateKeyPem, scope: "serpapi:search http_fetch:*" }, log);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name).sort()).toEqual(["http_fetch__get", "http_fetch__head", "serpapi__search"]);
    for (let i = 0; i < 4; i++) {
      const result = await client.callTool({ name: "serpapi__search", arguments: { q: `scale-out ${i} ${randomUUID()}` } });
      expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    }
    await client.close();
    // The session's MCP requests (initialize, initialized, list, calls) were served by both processes.
    const mcp = lb.served.filter((s) => s.startsWith("POST /mcp"));
    expect(mcp.length).toBeGreaterThanOrEqual(7);
    const ports = new Set(mcp.map((s) => s.split(" -> ")[1]));
    expect(ports).toEqual(new Set([new URL(a.url).port, new URL(b.url).port]));
    // The token issued by one process was accepted by the other on the very next request.
    const token = log.paths().indexOf("POST /oauth/token 200");
    expect(log.paths()[token + 1]).toBe("POST /mcp 200");
  });
});
