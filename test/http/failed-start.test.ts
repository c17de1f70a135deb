import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { createGateway } from "../../src/gateway.js";

/** Open sockets, servers and timers of this process, by kind. */
const resources = () => {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
};

/** Polls `done` until it holds or two seconds pass (then the assertion after it reports what is left). */
async function settled(done: () => boolean) {
  const deadline = Date.now() + 2000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
}

describe("a gateway that fails to start", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-failed-start-"));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const config = () =>
    loadConfig({ PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, UPSTREAM_MODE: "mock", POLICY_DEFAULTS: "off", FF_ASYNC: "on", LOG_LEVEL: "silent" });

  it("stops every part it had started, as close() would (no server, socket or live timer left behind)", async () => {
    // A first start leaves a policy row that cannot be parsed: the next start fails late, after
    // the store, identity, audit, mock upstreams and toolbox are up.
    const first = await createGateway(config(), { logger: pino({ level: "silent" }) });
    await first.store.insertPolicy({ id: "pol_broken", name: "broken", spec: "not json", hash: "h", at: 1 });
    await first.close();

    // Handles are released a tick after their close callbacks: wait for the first gateway's to go.
    await settled(() => (resources().TCPServerWrap ?? 0) === 0);
    const before = resources();
    await expect(createGateway(config(), { logger: pino({ level: "silent" }) })).rejects.toThrow(SyntaxError);
    const kinds = ["TCPServerWrap", "TCPSocketWrap", "Timeout"];
    const leftBehind = () => kinds.filter((kind) => (resources()[kind] ?? 0) > (before[kind] ?? 0));
    await settled(() => leftBehind().length === 0);
    expect(leftBehind()).toEqual([]);
  });
});
