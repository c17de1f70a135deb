import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import { answers } from "./services.js";

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export interface OwnRedis {
  url: string;
  port: number;
  start(): Promise<void>;
  /** SIGKILL, like a crashed Redis. */
  kill(): Promise<void>;
}

/** A Redis server of the test's own on its own port, so stopping it disturbs no one else. */
export async function ownRedis(): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const handle: OwnRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
      for (let i = 0; i < 100 && !(await answers("127.0.0.1", port, 200)); i++) await new Promise((r) => setTimeout(r, 50));
    },
    async kill() {
      if (child === undefined || child.exitCode !== null) return;
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
  };
  await handle.start();
  return handle;
}

export interface OwnPostgres {
  url: string;
  start(): Promise<void>;
  /** Immediate shutdown: connections drop as in a crash. */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

function pgBin(name: string): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!fs.existsSync(root)) return undefined;
  const version = fs.readdirSync(root).sort().at(-1);
  return version === undefined ? undefined : path.join(root, version, "bin", name);
}

/** Whether this machine can run a PostgreSQL server of a test's own (initdb present). */
export function canRunOwnPostgres(): boolean {
  const initdb = pgBin("initdb");
  return initdb !== undefined && fs.existsSync(initdb);
}

function runAsPostgres(command: string, args: string[]): Promise<void> {
  // initdb and postgres refuse to run as root: CI runs as root, so drop to the postgres user there.
  const [cmd, argv] = process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err}`))));
  });
}

/** A throwaway PostgreSQL cluster on its own port, so a test can stop it without touching the shared one. */
export async function ownPostgres(): Promise<OwnPostgres> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-pg-"));
  const data = path.join(dir, "data");
  if (process.getuid?.() === 0) fs.chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), 0);
  await runAsPostgres(pgBin("initdb")!, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const pgCtl = (...args: string[]) => runAsPostgres(pgBin("pg_ctl")!, ["-D", data, ...args]);
  const handle: OwnPostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => pgCtl("-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "-l", path.join(dir, "log"), "-w", "start"),
    stop: () => pgCtl("-m", "immediate", "-w", "stop"),
    async destroy() {
      await handle.stop().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await handle.start();
  return handle;
}
