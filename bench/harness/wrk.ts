import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export function hasWrk(): boolean {
  return spawnSync("wrk", ["--version"], { encoding: "utf8" }).error === undefined;
}

/** A wrk script that posts serpapi searches: unique queries (cache miss) or ten popular ones (hits). */
export function wrkScript(token: string, cached: boolean): string {
  const query = cached ? `"popular " .. (n % 10)` : `"wrk " .. n .. " " .. math.random(1, 1000000000)`;
  return `wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer ${token}"
local n = 0
function setup(thread) thread:set("seed", math.random(1, 1000000)) end
function init(args) math.randomseed(os.time() + seed) end
function request()
  n = n + 1
  return wrk.format(nil, "/api/proxy", nil, '{"tool":"serpapi","action":"search","params":{"q":"' .. ${query} .. '"}}')
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f %.1f\\n", summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.mean))
end
`;
}

/** Parses the line `done` prints: requests, non-2xx/3xx, socket errors, timeouts, p50/p99/mean in µs. */
export function parseWrkResult(stdout: string, durationS: number) {
  const m = /RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`wrk printed no result:\n${stdout}`);
  const [requests, status, socket, timeout, p50, p99, mean] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  return { rps: requests / durationS, p50: p50 / 1000, p99: p99 / 1000, mean: mean / 1000, errors: status + socket + timeout, requests };
}

/** Closed-loop saturation by wrk (2 threads): same shape of answer as `closedLoop`. Asynchronous, so the caller keeps draining its children's output. */
export async function wrkLoop(o: { target: string; token: string; connections: number; durationS: number; cached: boolean }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-wrk-"));
  const script = path.join(dir, "post.lua");
  fs.writeFileSync(script, wrkScript(o.token, o.cached));
  try {
    const child = spawn("wrk", ["-t2", `-c${o.connections}`, `-d${o.durationS}s`, "-s", script, o.target], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (code !== 0) throw new Error(`wrk exited ${code}: ${stderr}`);
    return parseWrkResult(stdout, o.durationS);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
