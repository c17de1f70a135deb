/**
 * Gateway vs a bare Node reverse proxy (undici) over the same mock upstream, same load, same run:
 * `npm run bench:proxy [-- --connections 32 --seconds 15 --latency 0]`. Closed loop: each of the
 * connections sends its next request as soon as the previous answer arrives, so the figure is the
 * most each can serve here. Prints RPS and p50/p99 for both and the ratios.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startGatewayProcess, startTsProcess, type ChildService } from "./harness/processes.js";
import { closedLoop } from "./harness/closed-loop.js";
import { setUpFleet } from "./harness/traffic.js";

const { values } = parseArgs({ options: { connections: { type: "string", default: "32" }, seconds: { type: "string", default: "15" }, latency: { type: "string", default: "0" }, cached: { type: "boolean", default: false } } });
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const started: ChildService[] = [];

async function measure(target: string, token: string, label: string, durationS = seconds) {
  const r = await closedLoop({ target, token, connections, durationS, cached: values.cached === true });
  console.log(`${label.padEnd(12)} ${r.rps.toFixed(0).padStart(6)} RPS   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   errors ${r.errors}`);
  return r;
}

try {
  const mock = await startTsProcess("bench/harness/mock-server.ts", ["--latency", values.latency!, "--jitter", "0"], {}, /listening on (http:\/\/[\d.:]+)/);
  started.push(mock);
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-proxy-bench-"));
  const gateway = await startGatewayProcess({ DATA_DIR: dataDir, GATEWAY_ADMIN_KEY: adminKey, UPSTREAM_MODE: "live", SERPAPI_BASE_URL: mock.url, OPENAI_BASE_URL: mock.url, GMAIL_BASE_URL: mock.url, SSRF_ALLOW: "127.0.0.1/32", POLICY_DEFAULTS: "off", LOG_LEVEL: "warn" });
  started.push(gateway);
  const bare = await startTsProcess("bench/harness/bare-proxy-server.ts", [mock.url], {}, /listening on (http:\/\/[\d.:]+)/);
  started.push(bare);
  const fleet = await setUpFleet({ gatewayUrl: gateway.url, adminKey, mockUrl: mock.url, agents: 1, runId: randomBytes(3).toString("hex"), agentRatePerSecond: 1_000_000 });
  const token = await fleet.agents[0]!.token();
  console.log(`gateway vs bare reverse proxy: serpapi:search, ${values.cached ? "repeated (cached)" : "unique (uncached)"} queries, ${connections} connections, ${seconds} s each, mock upstream latency ${values.latency} ms, ${os.cpus().length} cores, Node ${process.version}`);
  await measure(gateway.url, token, "warm-up", 3);
  const b = await measure(bare.url, token, "bare proxy");
  const g = await measure(gateway.url, token, "gateway");
  console.log(`ratio gateway/bare: throughput ${(g.rps / b.rps).toFixed(2)}, p50 ${(g.p50 / b.p50).toFixed(2)}x, p99 ${(g.p99 / b.p99).toFixed(2)}x`);
  fs.rmSync(dataDir, { recursive: true, force: true });
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
}
