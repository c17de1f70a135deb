import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AdminClient, AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";

describe("graceful shutdown (SIGTERM) of a real gateway process", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-shutdown-"));
  let gw: GatewayProcess | undefined;
  // A SerpAPI stand-in that holds its answers until the test releases them, so "the calls are in
  // flight when SIGTERM arrives" is a state the test sees, not a sleep it hopes is long enough.
  const held: (() => void)[] = [];
  const upstream = http.createServer((req, res) => {
    req.resume();
    held.push(() => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ search_metadata: { status: "Success" }, organic_results: [] }));
    });
  });
  afterAll(async () => {
    await gw?.kill();
    upstream.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("finishes the calls in flight, writes their audit records, and exits 0", async () => {
    const adminKey = `admin-${randomBytes(16).toString("hex")}`;
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gw = await startGatewayProcess({
      DATA_DIR: dir,
      GATEWAY_ADMIN_KEY: adminKey,
      UPSTREAM_MODE: "live",
      SERPAPI_BASE_URL: upstreamUrl,
      SSRF_ALLOW: "127.0.0.1/32",
      SHUTDOWN_GRACE_MS: "10000",
    });
    const admin = new AdminClient({ baseUrl: gw.url, adminKey });
    await admin.putCredential("serpapi", "serp-shutdown-key-0001");
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await admin.createAgent({ name: "slow-caller", role: "assistant", publicKey: pair.publicKeyPem });
    // No SDK retries or catalog look-ups: the test counts the gateway's own token checks and answers.
    const client = new AgentClient({
      baseUrl: gw.url,
      agentId: agent.id,
      privateKey: pair.privateKeyPem,
      scopes: ["serpapi:search"],
      retry: { maxRetries: 0 },
      autoIdempotencyKeys: false,
    });
    await client.token();

    const inFlight = Promise.all([client.call<any>("serpapi", "search", { q: "slow one" }), client.call<any>("serpapi", "search", { q: "slow two" })]);
    // Both calls have reached the upstream (and wait there) before the signal.
    const deadline = Date.now() + 10_000;
    while (held.length < 2) {
      if (Date.now() > deadline) throw new Error("the calls never reached the upstream");
      await new Promise((r) => setTimeout(r, 5));
    }
    const exited = new Promise<number | null>((resolve) => gw!.child.once("exit", (code) => resolve(code)));
    gw.child.kill("SIGTERM");
    // Once the gateway refuses new requests, it is shutting down with the two calls still open: answer them now.
    while (
      (await fetch(`${gw.url}/health`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    ) {
      if (Date.now() > deadline) throw new Error("the gateway never started shutting down");
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const answer of held.splice(0)) answer();
    const answers = await inFlight;
    expect(answers.map((a) => a.data.search_metadata.status)).toEqual(["Success", "Success"]);
    expect(await exited).toBe(0);

    // The audit records of those calls were flushed before exit: a new process on the same data sees them.
    gw = await startGatewayProcess({ DATA_DIR: dir, GATEWAY_ADMIN_KEY: adminKey });
    const audit = await new AdminClient({ baseUrl: gw.url, adminKey }).raw<{ records: { tool: string; decision: string }[] }>("GET", "/api/audit?tool=serpapi");
    expect(audit.records.filter((r) => r.decision === "allow").length).toBe(2);
  }, 60_000);
});
