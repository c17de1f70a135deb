/**
 * Instructions per call, counted by valgrind (callgrind), for the gateway process in its default
 * configuration behind the same mock upstream and load as `bench:proxy`:
 * `npm run bench:instructions [-- --calls 1000 --gateway-entry <other build>/dist/src/cli/main.js]`.
 *
 * Instruction counts do not depend on what else the machine is doing, so two builds can be compared
 * on a busy host where times cannot (callgrind counts whatever the process runs: JIT code, the
 * garbage collector, SQLite, the kernel's side excluded). Counting starts after a warm-up, so
 * start-up and compilation are left out. Runs the compiled gateway (`npx tsc` first).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { ROOT, liveGatewayEnv, startGatewayProcess, startMockServer, startTsProcess, type ChildService } from "./harness/processes.js";
import { setUpFleet } from "./harness/traffic.js";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "1000" },
    warmup: { type: "string", default: "600" },
    concurrency: { type: "string", default: "4" },
    "gateway-entry": { type: "string", default: "dist/src/cli/main.js" },
    "no-build": { type: "boolean", default: false },
    bare: { type: "boolean", default: false },
    /** Copy callgrind's dump here (for callgrind_annotate: which native code, GC, SQLite or crypto, takes the instructions). */
    "keep-dump": { type: "string" },
  },
});
const calls = Number(values.calls);
// valgrind and vgdb name their shared files after USER and HOST: both sides must see the same (the
// gateway reads HOST too, as the address it binds).
const VGDB_ENV = { USER: "bench", HOST: "127.0.0.1" };
const started: ChildService[] = [];

if (!values["no-build"] && values["gateway-entry"] === "dist/src/cli/main.js") {
  if (spawnSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: ROOT, stdio: "inherit" }).status !== 0) throw new Error("tsc failed");
}

/** `n` uncached searches, `concurrency` at a time. */
async function drive(pool: Pool, token: string, n: number, concurrency: number, label: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await pool.request({
        path: "/api/proxy",
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ tool: "serpapi", action: "search", params: { q: `${label} ${i} ${randomBytes(4).toString("hex")}` } }),
      });
      await r.body.text();
      if (r.statusCode !== 200) throw new Error(`call answered ${r.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-instructions-"));
try {
  const mock = await startMockServer(0);
  started.push(mock);
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const out = path.join(dir, "callgrind.out");
  const vgdb = path.join(dir, "vgdb");
  const valgrind = ["valgrind", "--tool=callgrind", `--callgrind-out-file=${out}`, "--dump-instr=no", "--instr-atstart=no", `--vgdb-prefix=${vgdb}`];
  // --bare: the bare reverse proxy under the same count, for the ratio (it forwards without a token).
  const gateway = values.bare
    ? await startTsProcess(
        "bench/harness/bare-proxy-server.ts",
        [mock.url],
        { ...VGDB_ENV },
        /listening on (http:\/\/[\d.:]+)/,
        600_000,
        undefined,
        [],
        valgrind,
      )
    : await startGatewayProcess(
        { ...liveGatewayEnv({ dataDir: path.join(dir, "data"), adminKey, mockUrl: mock.url, logLevel: "info" }), ...VGDB_ENV },
        600_000,
        undefined,
        [],
        values["gateway-entry"],
        valgrind,
      );
  started.push(gateway);
  const token = values.bare
    ? "unused"
    : await (
        await setUpFleet({
          gatewayUrl: gateway.url,
          adminKey,
          mockUrl: mock.url,
          agents: 1,
          runId: randomBytes(3).toString("hex"),
          agentRatePerSecond: 1_000_000,
          agentQuotaPerDay: 1_000_000_000,
        })
      ).agents[0]!.token();
  const pool = new Pool(gateway.url, { connections: Number(values.concurrency) });
  await drive(pool, token, Number(values.warmup), Number(values.concurrency), "warm-up");
  const pid = String(gateway.child.pid);
  const control = (command: string) => execFileSync("callgrind_control", [`--vgdb-prefix=${vgdb}`, command, pid], { env: { ...process.env, ...VGDB_ENV } });
  control("--instr=on");
  await drive(pool, token, calls, Number(values.concurrency), "counted");
  // The last calls' audit commits and log flush come within a few ms of their answers.
  await new Promise((resolve) => setTimeout(resolve, 500));
  control("--instr=off");
  control("--dump");
  await pool.close();
  await gateway.stop();
  const dumps = fs.readdirSync(dir).filter((f) => f.startsWith("callgrind.out"));
  let total = 0;
  if (values["keep-dump"] !== undefined) for (const f of dumps) fs.copyFileSync(path.join(dir, f), path.join(values["keep-dump"], f));
  for (const f of dumps) {
    const m = /^totals:\s+(\d+)/m.exec(fs.readFileSync(path.join(dir, f), "utf8"));
    total = Math.max(total, Number(m?.[1] ?? 0));
  }
  console.log(
    `${values.bare ? "bare proxy" : `gateway ${values["gateway-entry"]}`}: ${calls} uncached serpapi searches, ${values.concurrency} at a time: ${(total / calls / 1000).toFixed(0)} k instructions per call (${(total / 1e9).toFixed(2)} G in all, counted by callgrind after ${values.warmup} warm-up calls)`,
  );
} finally {
  await Promise.allSettled(started.map((s) => s.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
}
