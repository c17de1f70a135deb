import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, Redactor, seal } from "../../src/vault/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("envelope encryption", () => {
  const key = randomBytes(32);
  it("round-trips and binds the context", () => {
    const sealed = seal(key, "sk-live-123", "credential:openai:1");
    expect(JSON.stringify(sealed)).not.toContain("sk-live-123");
    expect(open(key, sealed, "credential:openai:1").toString()).toBe("sk-live-123");
    expect(() => open(key, sealed, "credential:openai:2")).toThrow();
    expect(() => open(randomBytes(32), sealed, "credential:openai:1")).toThrow();
    const [iv, tag, ct] = sealed.payload.split(".");
    const flipped = Buffer.from(ct!, "base64url");
    flipped[0] = flipped[0]! ^ 1;
    expect(() => open(key, { ...sealed, payload: [iv, tag, flipped.toString("base64url")].join(".") }, "credential:openai:1")).toThrow();
  });
  it("uses a fresh data key and IV every time", () => {
    const a = seal(key, "same", "c");
    const b = seal(key, "same", "c");
    expect(a.wrappedKey).not.toBe(b.wrappedKey);
    expect(a.payload).not.toBe(b.payload);
  });
});

describe("redactor", () => {
  it("removes known secrets, plain and URL-encoded, longest first", () => {
    const r = new Redactor();
    r.setSecrets(["abc+/=123", "abcd", "xyz"]);
    expect(r.redact("key=abc%2B%2F%3D123 and abc+/=123 and abcd, xyz")).toBe("key=[REDACTED] and [REDACTED] and [REDACTED], xyz");
    expect(r.redactValue({ a: ["abcd"], b: 1 })).toEqual({ a: ["[REDACTED]"], b: 1 });
  });
});

describe("credentials API", () => {
  let t: TestGateway;
  const secret = `canary-${randomBytes(12).toString("hex")}`;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t.close());
  const admin = (p: string, body?: unknown) =>
    http(`${t.url}${p}`, { ...(body === undefined ? {} : { body }), headers: { authorization: `Bearer ${t.adminKey}` } });

  it("stores versions, activates and rolls back, and never returns or stores the plaintext", async () => {
    const v1 = await admin("/api/credentials", { tool: "serpapi", secret, description: "first" });
    expect(v1.status).toBe(201);
    expect(v1.json).toMatchObject({ tool: "serpapi", activeVersion: 1 });
    const v2 = await admin("/api/credentials", { tool: "serpapi", secret: `${secret}-v2` });
    expect(v2.json.activeVersion).toBe(2);
    expect(t.gateway.vault.secretFor("serpapi")).toBe(`${secret}-v2`);
    const staged = await admin("/api/credentials", { tool: "serpapi", secret: `${secret}-v3`, activate: false });
    expect(staged.json.activeVersion).toBe(2);
    const rolledBack = await admin("/api/credentials/serpapi/versions/1/activate", {});
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.json.activeVersion).toBe(1);
    expect(t.gateway.vault.secretFor("serpapi")).toBe(secret);
    const list = await admin("/api/credentials");
    expect(list.json.credentials[0].versions.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);
    for (const r of [v1, v2, staged, rolledBack, list, await admin("/api/credentials/serpapi")]) expect(r.text).not.toContain(secret);
    await t.gateway.audit.flush();
    const dbFiles = fs.readdirSync(t.dataDir).filter((f) => f.startsWith("gateway.db"));
    for (const f of dbFiles) expect(fs.readFileSync(path.join(t.dataDir, f)).includes(secret)).toBe(false);
    expect(t.logs.join("")).not.toContain(secret);
  });

  it("refuses bad input with clear errors", async () => {
    expect((await admin("/api/credentials", { tool: "Bad Tool", secret: "x" })).json.error.code).toBe("invalid_request");
    expect((await admin("/api/credentials", { tool: "serpapi" })).status).toBe(400);
    const missing = await admin("/api/credentials/serpapi/versions/99/activate", {});
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("credential_not_found");
    expect((await admin("/api/credentials/nothing-here")).status).toBe(404);
    expect((await http(`${t.url}/api/credentials`)).status).toBe(401);
  });

  it("scrubs a stored secret from any log line, whatever field it lands in", async () => {
    t.gateway.logger.info({ note: `upstream said: bad key ${secret}` }, `message with ${secret}`);
    const last = t.logs[t.logs.length - 1]!;
    expect(last).not.toContain(secret);
    expect(last).toContain("[REDACTED]");
  });

  it("survives a restart: secrets are unsealed again with the master key", async () => {
    const dataDir = t.dataDir;
    await t.gateway.close();
    const again = await startTestGateway({ DATA_DIR: dataDir });
    try {
      expect(again.gateway.vault.secretFor("serpapi")).toBe(secret);
    } finally {
      await again.gateway.close();
    }
    t = await startTestGateway();
  });
});
