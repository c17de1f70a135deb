import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AdminClient, AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";

describe("graceful shutdown (SIGTERM) of a real gateway process", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-shutdown-"));
  let gw: GatewayProcess | undefined;
  afterAll(async () => {
    await gw?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("finishes the calls in flight, writes their audit records, and exits 0", async () => {
    const adminKey = `admin-${randomBytes(16).toString("hex")}`;
    gw = await startGatewayProcess({ DATA_DIR: dir, GATEWAY_ADMIN_KEY: adminKey, MOCK_LATENCY_MS: "1500", SHUTDOWN_GRACE_MS: "10000" });
    const admin = new AdminClient({ baseUrl: gw.url, adminKey });
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await admin.createAgent({ name: "slow-caller", role: "assistant", publicKey: pair.publicKeyPem });
    // No SDK retries or catalog look-ups: the test counts the gateway's own token checks and answers.
    const client = new AgentClient({ baseUrl: gw.url, agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search"], retry: { maxRetries: 0 }, autoIdempotencyKeys: false });
    await client.token();

    const inFlight = Promise.all([client.call<any>("serpapi", "search", { q: "slow one" }), client.call<any>("serpapi", "search", { q: "slow two" })]);
    // Both calls are past authentication (and so waiting on the slow upstream) before the signal.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      if (Number(/gateway_token_validations_total\{result="valid"\} (\d+)/.exec(metrics)?.[1] ?? 0) >= 2) break;
      if (Date.now() > deadline) throw new Error("the calls never reached the gateway");
      await new Promise((r) => setImmediate(r));
    }
    const exited = new Promise<number | null>((resolve) => gw!.child.once("exit", (code) => resolve(code)));
    gw.child.kill("SIGTERM");
    const answers = await inFlight;
    expect(answers.map((a) => a.data.search_metadata.status)).toEqual(["Success", "Success"]);
    expect(await exited).toBe(0);

    // The audit records of those calls were flushed before exit: a new process on the same data sees them.
    gw = await startGatewayProcess({ DATA_DIR: dir, GATEWAY_ADMIN_KEY: adminKey });
    const audit = await new AdminClient({ baseUrl: gw.url, adminKey }).raw<{ records: { tool: string; decision: string }[] }>("GET", "/api/audit?tool=serpapi");
    expect(audit.records.filter((r) => r.decision === "allow").length).toBe(2);
  }, 60_000);
});
