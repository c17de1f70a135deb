/**
 * Token benchmark: verifications per second on the request path (IdentityService.verifyAccessToken,
 * everything it checks included) against a bare jose signature check of the same token as the
 * baseline, and token issues per second (assertion check + signing + provenance record).
 * Run: npm run bench:tokens [-- --seconds 3]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { jwtVerify } from "jose";
import { AgentClient } from "../src/client/index.js";
import { loadConfig } from "../src/config/index.js";
import { createGateway } from "../src/gateway.js";
import { generateAgentKeyPair } from "../src/identity/index.js";
import { createLogger } from "../src/obs/logger.js";

const seconds = Number(process.argv[process.argv.indexOf("--seconds") + 1] || 3) || 3;

async function measure(label: string, fn: () => Promise<unknown>, batch = 64): Promise<number> {
  const samples: number[] = [];
  const until = performance.now() + seconds * 1000;
  let count = 0;
  while (performance.now() < until) {
    const started = performance.now();
    for (let i = 0; i < batch; i++) await fn();
    samples.push((performance.now() - started) / batch);
    count += batch;
  }
  samples.sort((a, b) => a - b);
  const perSecond = count / seconds;
  const p99 = samples[Math.floor(samples.length * 0.99)] ?? 0;
  console.log(
    `${label.padEnd(44)} ${Math.round(perSecond).toString().padStart(9)} ops/s   mean ${(1e6 / perSecond).toFixed(1)} µs   p99 of batch means ${(p99 * 1000).toFixed(1)} µs`,
  );
  return perSecond;
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-bench-tokens-"));
const config = loadConfig({ DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "silent" });
const gateway = await createGateway(config, { logger: createLogger("silent") });
try {
  const pair = generateAgentKeyPair("EdDSA");
  const { agent } = await gateway.identity.createAgent({ name: "bench", role: "researcher", publicKey: pair.publicKeyPem });
  const client = new AgentClient({ baseUrl: "http://unused", agentId: agent.id, privateKey: pair.privateKeyPem, scopes: ["serpapi:search"] });
  const issued = await gateway.identity.issueToken({ agentId: agent.id, assertion: await client.signAssertion(), scopes: ["serpapi:search"] });
  const key = gateway.keyring.current();
  const publicKey = (await gateway.keyring.verificationKey(key.kid))!;

  console.log(`4Runr Gateway token benchmark (${seconds}s per measurement, Node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"})`);
  const bare = await measure("baseline: jose jwtVerify (signature only)", () => jwtVerify(issued.token, publicKey, { algorithms: ["EdDSA"] }));
  const full = await measure("gateway: verifyAccessToken (request path)", () => gateway.identity.verifyAccessToken(issued.token));
  console.log(
    `repeat verification on the request path: ${(full / bare).toFixed(1)}x the rate of a bare signature check (signatures are verified once per token, everything else every request)`,
  );
  const fresh = await Promise.all(
    Array.from(
      { length: 400 },
      async () => (await gateway.identity.issueToken({ agentId: agent.id, assertion: await client.signAssertion(), scopes: ["serpapi:search"] })).token,
    ),
  );
  const firstStarted = performance.now();
  for (const token of fresh) await gateway.identity.verifyAccessToken(token);
  const first = fresh.length / ((performance.now() - firstStarted) / 1000);
  console.log(
    `${"gateway: first verification of a new token".padEnd(44)} ${Math.round(first).toString().padStart(9)} ops/s   (${fresh.length} fresh tokens, each verified once)`,
  );
  console.log(`first-time verification: ${(first / bare).toFixed(2)}x the rate of the bare signature check`);
  const assertions: string[] = [];
  const issue = await measure(
    "gateway: issueToken (assertion + sign + record)",
    async () => {
      const assertion = assertions.pop() ?? (await client.signAssertion());
      return gateway.identity.issueToken({ agentId: agent.id, assertion, scopes: ["serpapi:search"] });
    },
    16,
  );
  console.log(`token issues per second: ${Math.round(issue)} (embedded SQLite store; includes signing the agent's assertion)`);
} finally {
  await gateway.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
