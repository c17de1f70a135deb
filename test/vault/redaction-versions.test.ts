import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialVault } from "../../src/vault/index.js";
import { startTestGateway, TestClock, type TestGateway } from "../helpers/gateway.js";

const canary = (label: string) => `${label}-${randomBytes(10).toString("hex")}`;

/** Every stored version of a credential is scrubbed, not only the active one, and so are recently deleted ones. */
describe("redaction covers every credential version", () => {
  const clock = new TestClock();
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({}, { now: clock.now });
  });
  afterAll(async () => t.close());

  it("scrubs old, staged and active versions from logs and echoed text", async () => {
    const [old, active, staged] = [canary("old"), canary("active"), canary("staged")];
    await t.admin.putCredential("serpapi", old);
    await t.admin.putCredential("serpapi", active);
    await t.admin.putCredential("serpapi", staged, { activate: false });
    expect(t.gateway.vault.secretFor("serpapi")).toBe(active);
    t.gateway.logger.info({ upstreamSaid: `bad key ${old}; also ${staged} and ${encodeURIComponent(active)}` }, "echo check");
    const line = t.logs.find((l) => l.includes("echo check"))!;
    for (const s of [old, active, staged]) expect(line).not.toContain(s);
    expect(t.gateway.redactor.redactValue({ error: `rejected ${old}` })).toEqual({ error: "rejected [REDACTED]" });
  });

  it("keeps scrubbing a version deleted from the store (seen by a reload), for a while", async () => {
    const doomed = canary("doomed");
    await t.admin.putCredential("openai", doomed);
    await t.admin.putCredential("openai", canary("next"));
    await t.gateway.store.driver.run(`DELETE FROM credentials WHERE tool = $1 AND version = $2`, ["openai", 1]);
    await t.gateway.vault.load();
    expect(t.gateway.redactor.redact(`echo ${doomed}`)).toBe("echo [REDACTED]");
    // Forgotten once the retention has passed and another change happened.
    clock.advance(25 * 3_600_000);
    await t.gateway.vault.load();
    expect(t.gateway.redactor.redact(`echo ${doomed}`)).toBe(`echo ${doomed}`);
  });
});

describe("vault: secrets known for redaction (unit)", () => {
  it("reports every stored version's secret, active or not", async () => {
    const t = await startTestGateway();
    try {
      const vault = new CredentialVault({ store: t.gateway.store, masterKey: randomBytes(32), now: Date.now });
      await vault.put("gmail_send", "first-secret-value", {});
      await vault.put("gmail_send", "second-secret-value", { activate: false });
      expect(vault.knownSecrets().sort()).toEqual(["first-secret-value", "second-secret-value"]);
    } finally {
      await t.close();
    }
  });
});
