/**
 * The MCP door vs the REST door, same tool, same mock upstream, same gateway, same run:
 * `npm run bench:mcp [-- --seconds 10 --rounds 2 --saturate 16 --latency 0]`.
 *
 * Two phases, each a closed loop (a connection sends its next call as soon as the previous answer
 * arrives): one connection, where a call's gateway time is what the gateway spends on it and
 * nothing else (the check is made here), then `--saturate` connections, where the figures are
 * throughput and queueing on this machine's cores.
 * REST is `POST /api/proxy {tool, action, params}`; MCP is `POST /mcp` with a JSON-RPC
 * `tools/call` for `serpapi__search` (what the SDK client sends in stateless mode: token and
 * protocol version on every request). Unique queries, so nothing is served from the cache.
 *
 * "Gateway time" of a call is what the client waited, from sending the request to holding the whole
 * answer (the client's own JSON work, building the request and parsing the answer, is outside the
 * clock), minus the upstream time the gateway reports for that call (`meta.upstreamMs` /
 * `_meta.upstreamMs`): everything the door and the road cost, HTTP and JSON-RPC parsing included. The rounds alternate REST and MCP so drift hits both.
 * The check: MCP gateway time p50 with one connection at most 1.25x REST's.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { liveGatewayEnv, startGatewayProcess, startMockServer, type ChildService } from "./harness/processes.js";
import { percentiles } from "./harness/report/compute.js";
import { setUpFleet } from "./harness/traffic.js";

const { values } = parseArgs({
  options: {
    saturate: { type: "string", default: "16" },
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "2" },
    latency: { type: "string", default: "0" },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const LIMIT = 1.25;
const started: ChildService[] = [];

type Door = "rest" | "mcp";
interface Sample {
  latencyMs: number;
  gatewayMs: number;
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc; 10 ms resolution). */
function cpuMsOf(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

let gatewayPid = 0;

/** One closed-loop run against one door; returns per-call client latency and gateway time, and the gateway's CPU per call. */
async function run(door: Door, target: string, token: string, durationS: number, connections: number) {
  const cpuBefore = cpuMsOf(gatewayPid);
  const pool = new Pool(target, { connections, pipelining: 1 });
  const samples: Sample[] = [];
  let errors = 0;
  let n = 0;
  const end = performance.now() + durationS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const q = `${door} ${n++} ${randomBytes(4).toString("hex")}`;
      // The request is built before the clock starts and the answer parsed after it stops: the
      // client's own JSON work is not the gateway's time (the MCP answer, with the data both as
      // structuredContent and as text, is about twice the REST one to parse).
      const request =
        door === "rest"
          ? {
              path: "/api/proxy",
              method: "POST" as const,
              headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
              body: JSON.stringify({ tool: "serpapi", action: "search", params: { q } }),
            }
          : {
              path: "/mcp",
              method: "POST" as const,
              headers: {
                "content-type": "application/json",
                accept: "application/json, text/event-stream",
                "mcp-protocol-version": "2025-06-18",
                authorization: `Bearer ${token}`,
              },
              body: JSON.stringify({ jsonrpc: "2.0", id: n, method: "tools/call", params: { name: "serpapi__search", arguments: { q } } }),
            };
      const t0 = performance.now();
      try {
        const r = await pool.request(request);
        const bytes = await r.body.arrayBuffer();
        const latencyMs = performance.now() - t0;
        const body = JSON.parse(Buffer.from(bytes).toString("utf8")) as {
          meta?: { upstreamMs: number };
          result?: { isError?: boolean; _meta?: { upstreamMs: number } };
        };
        const upstreamMs = door === "rest" ? body.meta?.upstreamMs : body.result?.isError ? undefined : body.result?._meta?.upstreamMs;
        if (r.statusCode !== 200 || upstreamMs === undefined) errors++;
        else samples.push({ latencyMs, gatewayMs: latencyMs - upstreamMs });
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  await pool.close();
  return { samples, errors, rps: samples.length / durationS, cpuMs: cpuMsOf(gatewayPid) - cpuBefore };
}

function summary(samples: Sample[]) {
  const latency = percentiles(samples.map((s) => s.latencyMs));
  const gateway = percentiles(samples.map((s) => s.gatewayMs));
  return { n: samples.length, latencyP50: latency.p50, latencyP99: latency.p99, gatewayP50: gateway.p50, gatewayP99: gateway.p99, gatewayMean: gateway.mean };
}

try {
  const mock = await startMockServer(values.latency);
  started.push(mock);
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-mcp-bench-"));
  const gateway = await startGatewayProcess(liveGatewayEnv({ dataDir, adminKey, mockUrl: mock.url, logLevel: "warn" }));
  started.push(gateway);
  gatewayPid = gateway.child.pid!;
  const fleet = await setUpFleet({
    gatewayUrl: gateway.url,
    adminKey,
    mockUrl: mock.url,
    agents: 1,
    runId: randomBytes(3).toString("hex"),
    agentRatePerSecond: 1_000_000,
  });
  const token = await fleet.agents[0]!.token();

  // The same token through the official SDK client first: the door the bench drives is the one MCP clients use.
  const sdk = new Client({ name: "bench-check", version: "1" });
  await sdk.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  const check = await sdk.callTool({ name: "serpapi__search", arguments: { q: "sdk check" } });
  if (check.isError) throw new Error(`the SDK client's call failed: ${JSON.stringify(check.content)}`);
  await sdk.close();

  console.log(
    `MCP door vs REST door: serpapi:search, unique queries, ${rounds} x ${seconds} s per door and phase, mock upstream latency ${values.latency} ms, ${os.cpus().length} cores (load average ${os.loadavg()[0]!.toFixed(1)}), Node ${process.version}`,
  );
  let ok = true;
  for (const connections of [1, Number(values.saturate)]) {
    await run("rest", gateway.url, token, 2, connections);
    await run("mcp", gateway.url, token, 2, connections);
    const all: Record<Door, { samples: Sample[]; errors: number; rps: number[]; cpuMs: number }> = {
      rest: { samples: [], errors: 0, rps: [], cpuMs: 0 },
      mcp: { samples: [], errors: 0, rps: [], cpuMs: 0 },
    };
    for (let round = 0; round < rounds; round++) {
      for (const door of round % 2 === 0 ? (["rest", "mcp"] as const) : (["mcp", "rest"] as const)) {
        const r = await run(door, gateway.url, token, seconds, connections);
        all[door].samples.push(...r.samples);
        all[door].errors += r.errors;
        all[door].rps.push(r.rps);
        all[door].cpuMs += r.cpuMs;
      }
    }
    const rows = (["rest", "mcp"] as const).map((door) => ({
      door,
      ...summary(all[door].samples),
      errors: all[door].errors,
      rps: all[door].rps.reduce((a, b) => a + b, 0) / all[door].rps.length,
      cpuUsPerCall: (all[door].cpuMs * 1000) / Math.max(1, all[door].samples.length),
    }));
    console.log(`-- ${connections} connection${connections === 1 ? "" : "s"}`);
    for (const r of rows) {
      console.log(
        `${r.door.padEnd(5)} ${r.rps.toFixed(0).padStart(6)} RPS  latency p50 ${r.latencyP50.toFixed(2)} ms p99 ${r.latencyP99.toFixed(2)} ms  gateway time p50 ${r.gatewayP50.toFixed(3)} ms mean ${r.gatewayMean.toFixed(3)} ms p99 ${r.gatewayP99.toFixed(2)} ms  gateway CPU ${r.cpuUsPerCall.toFixed(0)} us/call  calls ${r.n} errors ${r.errors}`,
      );
    }
    const [rest, mcp] = rows as [(typeof rows)[0], (typeof rows)[0]];
    const p50Ratio = mcp.gatewayP50 / rest.gatewayP50;
    const meanRatio = mcp.gatewayMean / rest.gatewayMean;
    console.log(
      `MCP/REST gateway time: p50 ${p50Ratio.toFixed(2)}x, mean ${meanRatio.toFixed(2)}x, p99 ${(mcp.gatewayP99 / rest.gatewayP99).toFixed(2)}x; gateway CPU per call ${(mcp.cpuUsPerCall / rest.cpuUsPerCall).toFixed(2)}x; throughput ${(mcp.rps / rest.rps).toFixed(2)}x`,
    );
    if (rest.errors + mcp.errors > 0) ok = false;
    if (connections === 1 && p50Ratio > LIMIT) ok = false;
  }
  console.log(
    ok
      ? `PASS: one call through the MCP door costs at most ${LIMIT}x the REST door's gateway time (p50, one connection)`
      : `FAIL: the MCP door costs more than ${LIMIT}x the REST door's gateway time (p50, one connection), or calls failed`,
  );
  process.exitCode = ok ? 0 : 1;
  fs.rmSync(dataDir, { recursive: true, force: true });
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
}
