import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe } from "vitest";
import { ApprovalStore } from "../../src/approvals/approval-store.js";
import { openStore } from "../../src/store/index.js";
import { POSTGRES_URL, postgresAvailable, uniqueSchema } from "../helpers/services.js";
import { approvalStoreContract } from "../contract/approval-store.js";

approvalStoreContract("embedded SQLite", async () => {
  const store = await openStore({
    databaseUrl: undefined,
    databaseSchema: "public",
    databasePoolSize: 1,
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "4runr-approvals-")),
  });
  return { approvals: new ApprovalStore(store.driver), close: () => store.close() };
});

const available = await postgresAvailable();
const schemas: string[] = [];
describe.runIf(available)("PostgreSQL", () => {
  approvalStoreContract("PostgreSQL", async () => {
    const schema = uniqueSchema("approvals");
    schemas.push(schema);
    const store = await openStore({ databaseUrl: POSTGRES_URL, databaseSchema: schema, databasePoolSize: 4, dataDir: "/nonexistent" });
    return { approvals: new ApprovalStore(store.driver), close: () => store.close() };
  });
  afterAll(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await client.end();
  });
});
