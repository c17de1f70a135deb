/**
 * CPU cost of one `serpapi:search` call through each door, in-process:
 * `npx tsx bench/mcp-cpu.ts [calls per round] [--rounds 30] [--door rest|mcp|both]`.
 * The gateway, its mock upstream and the client share one process; the figure is CPU time
 * (process.cpuUsage) per call, which a busy shared machine disturbs far less than wall time. The
 * client's share is about the same for both doors (one undici request each), so the difference is
 * the door's. For a CPU profile of one door: `node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx
 * bench/mcp-cpu.ts 20000 --door mcp`.
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

const { values, positionals } = parseArgs({ allowPositionals: true, options: { door: { type: "string", default: "both" }, rounds: { type: "string", default: "30" } } });
const calls = Number(positionals[0] ?? 200);
const doors = values.door === "both" ? (["rest", "mcp"] as const) : ([values.door as "rest" | "mcp"] as const);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-mcp-cpu-"));
const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, UPSTREAM_MODE: "mock", MOCK_LATENCY_MS: "0", MOCK_JITTER_MS: "0", POLICY_DEFAULTS: "off", LOG_LEVEL: "warn" });
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
  const one = async (door: "rest" | "mcp") => {
    const q = `${door} ${n++} ${randomBytes(4).toString("hex")}`;
    const r =
      door === "rest"
        ? await pool.request({ path: "/api/proxy", method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ tool: "serpapi", action: "search", params: { q } }) })
        : await pool.request({
            path: "/mcp",
            method: "POST",
            headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18", authorization: `Bearer ${token}` },
            body: JSON.stringify({ jsonrpc: "2.0", id: n, method: "tools/call", params: { name: "serpapi__search", arguments: { q } } }),
          });
    const body = (await r.body.json()) as { result?: { isError?: boolean } };
    if (r.statusCode !== 200 || body.result?.isError === true) throw new Error(`${door} call failed: ${r.statusCode} ${JSON.stringify(body).slice(0, 300)}`);
  };
  for (const door of doors) for (let i = 0; i < 500; i++) await one(door);
  const totals: Record<string, number[]> = { rest: [], mcp: [] };
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const door of round % 2 === 0 ? doors : [...doors].reverse()) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < calls; i++) await one(door);
      const used = process.cpuUsage(cpu);
      totals[door]!.push((used.user + used.system) / calls);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const line = doors.map((d) => `${d} median ${median(totals[d]!).toFixed(0)} mean ${mean(totals[d]!).toFixed(0)} min ${Math.min(...totals[d]!).toFixed(0)} µs/call`).join("  ");
  // Rounds are short and alternate, so a busy machine disturbs both doors alike: the ratio of the means is the figure to read.
  const ratio = doors.length === 2 ? `  MCP/REST ${(mean(totals.mcp!) / mean(totals.rest!)).toFixed(2)}x (means), ${(median(totals.mcp!) / median(totals.rest!)).toFixed(2)}x (medians); MCP - REST ${(mean(totals.mcp!) - mean(totals.rest!)).toFixed(0)} µs/call` : "";
  console.log(`${values.rounds} alternating rounds of ${calls} sequential uncached calls per door, CPU per call (gateway + mock upstream + client), load average ${os.loadavg()[0]!.toFixed(1)}: ${line}${ratio}`);
  await pool.close();
} finally {
  await gateway.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
