import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.js";

describe("configuration", () => {
  it("has embedded defaults", () => {
    const c = loadConfig({}, "/srv");
    expect(c).toMatchObject({
      port: 3000,
      host: "127.0.0.1",
      dataDir: "/srv/data",
      databaseUrl: undefined,
      logLevel: "info",
      issuer: "urn:4runr:gateway",
      upstreamMode: "mock",
    });
    expect(c.features).toEqual({ cache: true, retry: true, breakers: true, policy: true, async: false });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ PORT: "70000" }, "PORT"],
    [{ PORT: "abc" }, "PORT"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    [{ REDIS_URL: "http://x" }, "REDIS_URL"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ GATEWAY_ADMIN_KEY: "short" }, "GATEWAY_ADMIN_KEY"],
    [{ GATEWAY_MASTER_KEY: "bm90MzJieXRlcw==" }, "GATEWAY_MASTER_KEY"],
    [{ FF_CACHE: "maybe" }, "FF_CACHE"],
    [{ UPSTREAM_MODE: "fake" }, "UPSTREAM_MODE"],
    [{ TOKEN_DEFAULT_TTL_SECONDS: "7200", TOKEN_MAX_TTL_SECONDS: "3600" }, "TOKEN_DEFAULT_TTL_SECONDS"],
    [{ DATABASE_SCHEMA: "Robert'); DROP" }, "DATABASE_SCHEMA"],
  ])("names the bad key in %o", (env, key) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^Invalid configuration ${key}:`));
  });

  it("accepts PORT=0 and flags in several spellings", () => {
    const c = loadConfig({ PORT: "0", FF_CACHE: "off", FF_ASYNC: "1", DATABASE_URL: "postgres://u@h/db" });
    expect(c.port).toBe(0);
    expect(c.features.cache).toBe(false);
    expect(c.features.async).toBe(true);
    expect(c.databaseUrl).toBe("postgres://u@h/db");
  });

  it("reads the idempotency key store and wait, and refuses a Redis store without REDIS_URL", () => {
    const c = loadConfig({ IDEMPOTENCY_STORE: "sql", IDEMPOTENCY_WAIT_MS: "250", CHAOS_SEED: "7" });
    expect(c.idempotency).toMatchObject({ store: "sql", waitMs: 250 });
    expect(c.chaosSeed).toBe(7);
    expect(loadConfig({}).idempotency.store).toBe("auto");
    expect(() => loadConfig({ IDEMPOTENCY_STORE: "redis" })).toThrow(/^Invalid configuration IDEMPOTENCY_STORE:/);
    expect(() => loadConfig({ IDEMPOTENCY_STORE: "disk" })).toThrow(/^Invalid configuration IDEMPOTENCY_STORE:/);
    expect(() => loadConfig({ CHAOS_SEED: "-1" })).toThrow(/^Invalid configuration CHAOS_SEED:/);
  });
});
