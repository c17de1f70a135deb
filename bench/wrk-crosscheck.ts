/**
 * Cross-checks our closed-loop generator against wrk on the same gateway, endpoint, connection count
 * and duration: `npm run bench:wrk` (needs `wrk`, Debian package). Prints both results side by side.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closedLoop } from "./harness/closed-loop.js";
import { liveGatewayEnv, startGatewayProcess, startMockServer, type ChildService } from "./harness/processes.js";
import { setUpFleet } from "./harness/traffic.js";

const connections = 32;
const seconds = 10;
const started: ChildService[] = [];
try {
  const mock = await startMockServer(0);
  started.push(mock);
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-wrk-"));
  const gateway = await startGatewayProcess(liveGatewayEnv({ dataDir: dir, adminKey, mockUrl: mock.url, logLevel: "warn" }));
  started.push(gateway);
  const fleet = await setUpFleet({
    gatewayUrl: gateway.url,
    adminKey,
    mockUrl: mock.url,
    agents: 1,
    runId: randomBytes(3).toString("hex"),
    agentRatePerSecond: 1_000_000,
  });
  const token = await fleet.agents[0]!.token();
  const lua = path.join(dir, "post.lua");
  fs.writeFileSync(
    lua,
    `wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\nwrk.headers["authorization"] = "Bearer ${token}"\nwrk.body = '{"tool":"serpapi","action":"search","params":{"q":"popular 1"}}'\n`,
  );
  await closedLoop({ target: gateway.url, token, connections, durationS: 3, cached: true }); // warm-up
  const wrk = spawnSync("wrk", ["-t2", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", lua, `${gateway.url}/api/proxy`], { encoding: "utf8" });
  if (wrk.status !== 0) throw new Error(`wrk failed: ${wrk.stderr}`);
  const ours = await closedLoop({ target: gateway.url, token, connections, durationS: seconds, cached: true });
  console.log(`same gateway, POST /api/proxy serpapi:search (cached answer), ${connections} connections, ${seconds} s, ${os.cpus().length} cores\n`);
  console.log("--- wrk ---");
  console.log(wrk.stdout.trim());
  console.log("\n--- bench/harness closed loop ---");
  console.log(
    `Requests/sec: ${ours.rps.toFixed(0)}   latency mean ${ours.mean.toFixed(2)} ms, p50 ${ours.p50.toFixed(2)} ms, p99 ${ours.p99.toFixed(2)} ms, errors ${ours.errors}`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
}
