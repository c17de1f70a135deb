/**
 * CPU cost of one `serpapi:search` call through each door, in-process:
 * `npx tsx bench/mcp-cpu.ts [calls per door] [--door rest|mcp|both]`.
 * The gateway, its mock upstream and the client share one process; the figure is CPU time
 * (process.cpuUsage around each call) per call. With both doors the calls alternate one by one
 * (REST, MCP, MCP, REST, ...), so a busy shared machine disturbs both alike, and the difference is
 * given with its standard error over ten blocks of calls: on a loaded 2-core machine this resolves
 * about ±50 µs where wall times and separate runs do not. The client's share is about the same for
 * both doors (one undici request each), so the difference is the door's.
 * For a CPU profile of one door: `node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx
 * bench/mcp-cpu.ts 3000 --door mcp`.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { Pool } from "undici";
import { AdminClient, AgentClient } from "../src/client/index.js";
import { loadConfig } from "../src/config/index.js";
import { createGateway } from "../src/gateway.js";
import { generateAgentKeyPair } from "../src/identity/index.js";

type Door = "rest" | "mcp";
const { values, positionals } = parseArgs({ allowPositionals: true, options: { door: { type: "string", default: "both" } } });
const calls = Number(positionals[0] ?? 3000);
const doors: Door[] = values.door === "both" ? ["rest", "mcp"] : [values.door as Door];
const BLOCKS = 10;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-mcp-cpu-"));
const config = loadConfig({
  PORT: "0",
  HOST: "127.0.0.1",
  DATA_DIR: dataDir,
  UPSTREAM_MODE: "mock",
  MOCK_LATENCY_MS: "0",
  MOCK_JITTER_MS: "0",
  POLICY_DEFAULTS: "off",
  LOG_LEVEL: "warn",
});
const gateway = await createGateway(config, { logger: pino({ level: "silent" }) });
try {
  const url = await gateway.listen();
  const admin = new AdminClient({ baseUrl: url, adminKey: gateway.adminKey.value });
  await admin.putCredential("serpapi", "serp-bench-key-0001");
  await admin.raw("POST", "/api/policies", { name: "bench-allow", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
  const pair = generateAgentKeyPair("EdDSA");
  const agent = await admin.createAgent({ name: "bench", role: "assistant", publicKey: pair.publicKeyPem });
  const token = await new AgentClient({ baseUrl: url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search"] }).token();
  const pool = new Pool(url, { connections: 1 });
  let n = 0;
  const one = async (door: Door) => {
    const q = `${door} ${n++} ${randomBytes(4).toString("hex")}`;
    const r =
      door === "rest"
        ? await pool.request({
            path: "/api/proxy",
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
            body: JSON.stringify({ tool: "serpapi", action: "search", params: { q } }),
          })
        : await pool.request({
            path: "/mcp",
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-protocol-version": "2025-06-18",
              authorization: `Bearer ${token}`,
            },
            body: JSON.stringify({ jsonrpc: "2.0", id: n, method: "tools/call", params: { name: "serpapi__search", arguments: { q } } }),
          });
    const body = (await r.body.json()) as { result?: { isError?: boolean } };
    if (r.statusCode !== 200 || body.result?.isError === true) throw new Error(`${door} call failed: ${r.statusCode} ${JSON.stringify(body).slice(0, 300)}`);
  };
  for (const door of doors) for (let i = 0; i < 500; i++) await one(door);
  const used: Record<Door, number[]> = { rest: Array<number>(BLOCKS).fill(0), mcp: Array<number>(BLOCKS).fill(0) };
  for (let i = 0; i < calls; i++) {
    const block = Math.floor((i * BLOCKS) / calls);
    for (const door of i % 2 === 0 ? doors : [...doors].reverse()) {
      const before = process.cpuUsage();
      await one(door);
      const cpu = process.cpuUsage(before);
      used[door][block]! += cpu.user + cpu.system;
    }
  }
  const perBlock = calls / BLOCKS;
  const meanAndSe = (xs: number[]) => {
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
    return { mean, se: sd / Math.sqrt(xs.length) };
  };
  const perCall = (door: Door) => meanAndSe(used[door].map((us) => us / perBlock));
  const line = doors.map((d) => `${d} ${perCall(d).mean.toFixed(0)} ± ${perCall(d).se.toFixed(0)} µs/call`).join("  ");
  let both = "";
  if (doors.length === 2) {
    const diff = meanAndSe(used.mcp.map((us, b) => (us - used.rest[b]!) / perBlock));
    both = `  MCP - REST ${diff.mean.toFixed(0)} ± ${diff.se.toFixed(0)} µs/call, MCP/REST ${(perCall("mcp").mean / perCall("rest").mean).toFixed(2)}x`;
  }
  console.log(
    `${calls} uncached calls per door, CPU per call (gateway + mock upstream + client, mean ± standard error over ${BLOCKS} blocks), load average ${os.loadavg()[0]!.toFixed(1)}: ${line}${both}`,
  );
  await pool.close();
} finally {
  await gateway.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
