/**
 * CPU cost of one tool call through the whole road, in-process: `npx tsx bench/road-cpu.ts [calls]`.
 * `--keys memory|redis|sql` sends gmail_send calls each with its own Idempotency-Key instead, claimed
 * in that store (redis needs REDIS_URL in the environment; sql runs on the embedded store), to show
 * what a shared claim adds.
 * The gateway, its mock upstreams and the client share one process, and the figure is CPU time
 * (process.cpuUsage) per call, which a busy shared machine disturbs far less than wall time. The
 * client's share is the same for every gateway version, so differences between versions are the road's.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config/index.js";
import { createGateway } from "../src/gateway.js";
import { AdminClient, AgentClient } from "../src/client/index.js";
import { generateAgentKeyPair } from "../src/identity/index.js";
import pino from "pino";

const calls = Number(process.argv[2] ?? 3000);
const keysAt = process.argv.indexOf("--keys");
const keyStore = keysAt > 0 ? process.argv[keysAt + 1] : undefined;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-road-cpu-"));
const env: Record<string, string> = {
  PORT: "0",
  HOST: "127.0.0.1",
  DATA_DIR: dataDir,
  UPSTREAM_MODE: "mock",
  MOCK_LATENCY_MS: "0",
  MOCK_JITTER_MS: "0",
  POLICY_DEFAULTS: "off",
  LOG_LEVEL: "warn",
};
if (keyStore !== undefined) env.IDEMPOTENCY_STORE = keyStore;
if (keyStore === "redis") Object.assign(env, { REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", REDIS_PREFIX: `bench-${process.pid}:` });
const config = loadConfig(env);
const gateway = await createGateway(config, { logger: pino({ level: "silent" }) });
try {
  const url = await gateway.listen();
  const admin = new AdminClient({ baseUrl: url, adminKey: gateway.adminKey.value });
  await admin.putCredential("serpapi", "serp-bench-key-0001");
  await admin.putCredential("gmail_send", "ya29.bench-token-0001");
  await admin.raw("POST", "/api/policies", { name: "bench-allow", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
  const pair = generateAgentKeyPair("EdDSA");
  const agent = await admin.createAgent({ name: "bench", role: "assistant", publicKey: pair.publicKeyPem });
  const client = new AgentClient({ baseUrl: url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search", "gmail_send:send"] });
  const one = (i: number) =>
    keyStore === undefined
      ? client.call("serpapi", "search", { q: `measured ${i}`, num: 10 })
      : client.call(
          "gmail_send",
          "send",
          { to: "a@example.com", subject: `m${i}`, text: "t" },
          { headers: { "idempotency-key": `bench-${process.pid}-${i}` } },
        );
  for (let i = 0; i < 500; i++) await one(-1 - i);
  const wall: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await one(i);
    wall.push(performance.now() - started);
  }
  const used = process.cpuUsage(cpu);
  wall.sort((a, b) => a - b);
  const cpuMicros = (used.user + used.system) / calls;
  console.log(
    `${calls} sequential ${keyStore === undefined ? "uncached serpapi calls" : `gmail_send calls with keys in ${keyStore}`}: CPU ${cpuMicros.toFixed(0)} µs/call (gateway + mock upstream + client), wall p50 ${wall[Math.floor(calls / 2)]!.toFixed(2)} ms`,
  );
} finally {
  await gateway.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
