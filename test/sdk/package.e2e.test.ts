import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGatewayProcess, ROOT, type ChildService } from "../../bench/harness/processes.js";
import { AdminClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";

/** The README's SDK example, exactly as a reader copies it. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const match = /<!-- sdk-example[^>]*-->\n```js\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error("README.md has no sdk-example block");
  return match[1]!;
}

describe("the SDK as a user gets it: npm pack, installed into a project outside the repository", () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-sdk-user-"));
  const adminKey = `sdk-e2e-${"a".repeat(24)}`;
  let gateway: ChildService;

  beforeAll(async () => {
    gateway = await startGatewayProcess({ DATA_DIR: path.join(work, "gateway-data"), GATEWAY_ADMIN_KEY: adminKey });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("packs with its build and type declarations, and installs with no other dependency", () => {
    // What `npm publish` would upload: prepack builds dist/ with the type declarations.
    const packed = execFileSync("npm", ["pack", "--pack-destination", work, "--json", "--silent"], { cwd: path.join(ROOT, "packages/sdk"), encoding: "utf8" });
    const [info] = JSON.parse(packed) as [{ filename: string; files: { path: string }[] }];
    const files = info.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["dist/index.js", "dist/index.d.ts", "package.json", "README.md"]));
    expect(files.filter((f) => f.startsWith("src/") || f.includes("test"))).toEqual([]);

    const project = path.join(work, "user-project");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "user-project", private: true, type: "module" }));
    execFileSync("npm", ["install", path.join(work, info.filename), "--no-audit", "--no-fund", "--offline", "--silent"], { cwd: project, encoding: "utf8" });
    const installed = JSON.parse(fs.readFileSync(path.join(project, "package-lock.json"), "utf8")) as { packages: Record<string, unknown> };
    // Node built-ins only: the SDK brings nothing else into a user's project.
    expect(Object.keys(installed.packages).filter((p) => p !== "")).toEqual(["node_modules/@4runr/gateway-sdk"]);
  }, 120_000);

  // Runs in the project the test above installed into.
  it("the README example, copied as is, calls a tool as a registered agent through a real gateway", async () => {
    const project = path.join(work, "user-project");
    const admin = new AdminClient({ baseUrl: gateway.url, adminKey });
    const pair = generateAgentKeyPair("EdDSA");
    const agent = await admin.createAgent({ name: "demo-agent", role: "researcher", publicKey: pair.publicKeyPem });
    // The agent file `gateway agent create` writes.
    fs.writeFileSync(
      path.join(project, "demo-agent.agent.json"),
      JSON.stringify({
        gatewayUrl: gateway.url,
        agentId: agent.id,
        name: "demo-agent",
        role: "researcher",
        algorithm: "EdDSA",
        privateKeyPem: pair.privateKeyPem,
      }),
      { mode: 0o600 },
    );
    fs.writeFileSync(path.join(project, "example.mjs"), readmeExample());
    const run = spawnSync(process.execPath, ["example.mjs"], { cwd: project, encoding: "utf8", timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const [correlationId, results] = run.stdout.trim().split(" ");
    expect(correlationId).toMatch(/^[\w-]{8,}$/);
    expect(Number(results)).toBeGreaterThan(0);
    // The call went through the gateway's road as this agent.
    const audit = await admin.audit({ agentId: agent.id });
    expect(audit.records.map((r) => [r.tool, r.decision, r.correlationId])).toContainEqual(["serpapi", "allow", correlationId]);
  }, 60_000);
});
