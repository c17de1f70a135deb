import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { loadConfig } from "../../src/config/index.js";
import { createGateway, type Gateway, type GatewayDeps } from "../../src/gateway.js";
import { createLogger } from "../../src/obs/logger.js";
import { AdminClient } from "../../src/client/index.js";
import { Redactor } from "../../src/vault/index.js";

/** A clock tests move by hand. */
export class TestClock {
  constructor(public nowMs = Date.UTC(2026, 10, 23, 12, 0, 0)) {}
  now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  admin: AdminClient;
  adminKey: string;
  dataDir: string;
  /** Every log line written so far, as text. */
  logs: string[];
  close(): Promise<void>;
}

/** Starts a real gateway on 127.0.0.1 with an OS-chosen port and its own temporary data dir. */
export async function startTestGateway(env: Record<string, string> = {}, deps: GatewayDeps = {}): Promise<TestGateway> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-test-"));
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, LOG_LEVEL: "info", SHUTDOWN_GRACE_MS: "2000", ...env });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString("utf8"));
      cb();
    },
  });
  const redactor = new Redactor();
  const logger = createLogger(config.logLevel, sink, (line) => redactor.redact(line));
  const gateway = await createGateway(config, { logger, redactor, ...deps });
  const url = await gateway.listen();
  return {
    gateway,
    url,
    adminKey: gateway.adminKey.value,
    admin: new AdminClient({ baseUrl: url, adminKey: gateway.adminKey.value }),
    dataDir,
    logs,
    async close() {
      await gateway.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** fetch against the gateway returning status, headers and parsed JSON. */
export async function http(url: string, init: { method?: string; headers?: Record<string, string>; body?: unknown; rawBody?: string } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.rawBody !== undefined) body = init.rawBody;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(url, { method: init.method ?? (body === undefined ? "GET" : "POST"), headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}
