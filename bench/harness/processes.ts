import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ChildService {
  /** The first capture group of `readyPattern` (a URL). */
  url: string;
  child: ChildProcess;
  output: string[];
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * Runs a TypeScript entry point of this repository as its own OS process (through tsx) and waits
 * until its output matches `readyPattern`. Used by tests and by the benchmark harness so the
 * gateway, the mock upstreams and the load generator never share an event loop.
 */
export async function startTsProcess(
  script: string,
  args: string[],
  env: Record<string, string>,
  readyPattern: RegExp,
  timeoutMs = 30_000,
  cpu?: number,
  nodeFlags: string[] = [],
  prefix: string[] = [],
): Promise<ChildService> {
  // Compiled JavaScript (dist/) runs on plain node, as `npm start` runs it; TypeScript through tsx.
  const loader = script.endsWith(".js") ? [] : ["--import", "tsx"];
  const argv = [...nodeFlags, ...loader, path.resolve(ROOT, script), ...args];
  // Pinned to one core with taskset when asked (Linux), so instances do not share a core.
  // A `prefix` runs node under another program (valgrind, for instruction counts).
  const pinned = cpu === undefined ? [...prefix, process.execPath, ...argv] : ["taskset", "-c", String(cpu), ...prefix, process.execPath, ...argv];
  const [command, ...commandArgs] = pinned as [string, ...string[]];
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in ${timeoutMs} ms:\n${output.join("")}`)), timeoutMs);
    let ready = false;
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 500) output.splice(0, output.length - 500);
      // Once ready, only keep the tail: matching the joined output on every chunk of a busy
      // gateway's access log would cost the benchmark process (the load generator) real CPU.
      if (ready) return;
      const match = readyPattern.exec(output.join(""));
      if (match) {
        ready = true;
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (c: Buffer) => output.push(c.toString()));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready:\n${output.join("")}`));
    });
  });
  return {
    url,
    child,
    output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** `gateway serve` in its own process, on a free port. */
export function startGatewayProcess(
  env: Record<string, string>,
  timeoutMs = 30_000,
  cpu?: number,
  nodeFlags: string[] = [],
  entry = "src/cli/main.ts",
  prefix: string[] = [],
): Promise<ChildService> {
  return startTsProcess(
    entry,
    ["serve"],
    { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env },
    /listening on (http:\/\/[\d.:]+)/,
    timeoutMs,
    cpu,
    nodeFlags,
    prefix,
  );
}

/** The benchmarks' mock upstream (SerpAPI, OpenAI, Gmail and web shapes) as a process of its own. */
export function startMockServer(latencyMs: string | number, jitterMs: string | number = 0): Promise<ChildService> {
  return startTsProcess("bench/harness/mock-server.ts", ["--latency", String(latencyMs), "--jitter", String(jitterMs)], {}, /listening on (http:\/\/[\d.:]+)/);
}

/** What a benchmark's gateway is told: live mode against the mock upstream at `mockUrl`, no default policies (the bench sets its own). */
export function liveGatewayEnv(o: { dataDir: string; adminKey: string; mockUrl: string; logLevel: string }): Record<string, string> {
  return {
    DATA_DIR: o.dataDir,
    GATEWAY_ADMIN_KEY: o.adminKey,
    UPSTREAM_MODE: "live",
    SERPAPI_BASE_URL: o.mockUrl,
    OPENAI_BASE_URL: o.mockUrl,
    GMAIL_BASE_URL: o.mockUrl,
    SSRF_ALLOW: "127.0.0.1/32",
    POLICY_DEFAULTS: "off",
    LOG_LEVEL: o.logLevel,
  };
}
