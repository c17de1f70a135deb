import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { migrate, migrations, openPostgresDriver, openStore } from "../../src/store/index.js";
import { POSTGRES_URL, postgresAvailable, uniqueSchema } from "../helpers/services.js";
import { storeContract } from "./store-contract.js";

const available = await postgresAvailable();
const schemas: string[] = [];

describe.runIf(available)("PostgreSQL backend", () => {
  storeContract("PostgreSQL", async () => {
    const schema = uniqueSchema("store");
    schemas.push(schema);
    return openStore({ databaseUrl: POSTGRES_URL, databaseSchema: schema, databasePoolSize: 4, dataDir: "/nonexistent" });
  });

  it("applies migrations once even when several instances start together", async () => {
    const schema = uniqueSchema("mig");
    schemas.push(schema);
    const drivers = await Promise.all([1, 2, 3].map(() => openPostgresDriver(POSTGRES_URL, schema, 1)));
    try {
      const applied = await Promise.all(drivers.map((d) => migrate(d)));
      expect(applied.flat()).toEqual(migrations.map((m) => m.version));
    } finally {
      await Promise.all(drivers.map((d) => d.close()));
    }
  });

  afterAll(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  });
});
