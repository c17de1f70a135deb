import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { storeContract } from "./store-contract.js";

storeContract("embedded SQLite", () =>
  openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "4runr-store-")) }),
);

describe("embedded SQLite: another connection holding the write lock", () => {
  it("a write waits on a timer, not inside SQLite's busy handler: the event loop keeps turning, and the write lands once the lock is free", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-store-"));
    const store = await openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir });
    // Like the audit writer thread: a connection of its own on the same file, in the middle of a write.
    const other = new Database(path.join(dataDir, "gateway.db"));
    try {
      other.exec("BEGIN IMMEDIATE");
      other.prepare("INSERT INTO meta (key, value) VALUES ('other', 'x')").run();
      let written = false;
      const write = store.setMeta("k", "v").then(() => (written = true));
      let turns = 0;
      while (turns < 20) {
        await new Promise((r) => setImmediate(r));
        turns++;
      }
      expect(written).toBe(false);
      other.exec("COMMIT");
      await write;
      expect(await store.getMeta("k")).toBe("v");
      expect(await store.getMeta("other")).toBe("x");
      // Transactions wait the same way.
      other.exec("BEGIN IMMEDIATE");
      let committed = false;
      const tx = store.driver.transaction(async (t) => t.run("INSERT INTO meta (key, value) VALUES ('tx', 'y')")).then(() => (committed = true));
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      expect(committed).toBe(false);
      other.exec("ROLLBACK");
      await tx;
      expect(await store.getMeta("tx")).toBe("y");
    } finally {
      other.close();
      await store.close();
    }
  });
});
