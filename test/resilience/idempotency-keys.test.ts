import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { FailoverIdempotencyKeys, MemoryIdempotencyKeys, RedisIdempotencyKeys, SqlIdempotencyKeys } from "../../src/resilience/idempotency.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { POSTGRES_URL, postgresAvailable, REDIS_URL, redisAvailable, uniqueSchema } from "../helpers/services.js";
import { idempotencyExpiryContract, idempotencyKeysContract } from "../contract/idempotency-keys.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const times = { ttlMs: 1000, inFlightTtlMs: 500 };

idempotencyKeysContract("memory", async () => new MemoryIdempotencyKeys<string>({ ...times, maxKeys: 1000 }));
idempotencyExpiryContract("memory", async () => new MemoryIdempotencyKeys<string>({ ...times, maxKeys: 1000 }));

describe("memory idempotency keys", () => {
  it("stay bounded", async () => {
    const keys = new MemoryIdempotencyKeys<number>({ ttlMs: 1_000_000, inFlightTtlMs: 1_000_000, maxKeys: 5 });
    for (let i = 0; i < 20; i++) {
      const c = await keys.claim(`k${i}`, "fp", 0);
      if (c.state === "claimed") await keys.complete(`k${i}`, c.lease, i, 0);
    }
    expect(keys.size).toBeLessThanOrEqual(5);
  });
});

/** A SQL backend over its own store; closing the keys closes the store. */
function sqlKeys(open: () => Promise<SqlStore>) {
  return async () => {
    const store = await open();
    const keys = new SqlIdempotencyKeys<string>(store.driver, times);
    return Object.assign(keys, { close: () => store.close() });
  };
}

const sqliteStore = () =>
  openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "4runr-idem-")) });
idempotencyKeysContract("SQL on SQLite", sqlKeys(sqliteStore));
idempotencyExpiryContract("SQL on SQLite", sqlKeys(sqliteStore));

const pgUp = await postgresAvailable();
const schemas: string[] = [];
describe.runIf(pgUp)("PostgreSQL", () => {
  const pgStore = () => {
    const schema = uniqueSchema("idem");
    schemas.push(schema);
    return openStore({ databaseUrl: POSTGRES_URL, databaseSchema: schema, databasePoolSize: 4, dataDir: "/nonexistent" });
  };
  idempotencyKeysContract("SQL on PostgreSQL", sqlKeys(pgStore));
  idempotencyExpiryContract("SQL on PostgreSQL", sqlKeys(pgStore));
  afterAll(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  });
});

const redisUp = await redisAvailable();
describe.runIf(redisUp)("Redis", () => {
  idempotencyKeysContract(
    "Redis",
    async () => new RedisIdempotencyKeys<string>(REDIS_URL, { ttlMs: 60_000, inFlightTtlMs: 60_000, prefix: `${uniqueSchema("idem")}:` }),
  );
});

describe("idempotency keys when the shared store fails", () => {
  const broken = {
    kind: "redis" as const,
    claim: async () => Promise.reject(new Error("ECONNREFUSED")),
    complete: async () => Promise.reject(new Error("ECONNREFUSED")),
    release: async () => Promise.reject(new Error("ECONNREFUSED")),
    close: async () => undefined,
  };

  it("closed: refuses (the road turns it into 503) rather than risk a second send", async () => {
    const transitions: boolean[] = [];
    const keys = new FailoverIdempotencyKeys<string>(broken, new MemoryIdempotencyKeys<string>({ ...times, maxKeys: 10 }), "closed", (d) =>
      transitions.push(d),
    );
    await expect(keys.claim("k", "fp", 0)).rejects.toThrow("ECONNREFUSED");
    expect(keys.isDegraded()).toBe(true);
    expect(transitions).toEqual([true]);
  });

  it("open: this instance's keys take over, and leases go back to the backend that issued them", async () => {
    const keys = new FailoverIdempotencyKeys<string>(broken, new MemoryIdempotencyKeys<string>({ ...times, maxKeys: 10 }), "open");
    const first = await keys.claim("k", "fp", 0);
    expect(first.state).toBe("claimed");
    expect(await keys.claim("k", "fp", 1)).toEqual({ state: "in_flight" });
    await keys.complete("k", (first as { lease: string }).lease, "sent once", 2);
    expect(await keys.claim("k", "fp", 3)).toEqual({ state: "done", result: "sent once" });
    expect(keys.isDegraded()).toBe(true);
  });
});
