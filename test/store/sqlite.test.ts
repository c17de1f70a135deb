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

describe("embedded SQLite: WAL checkpoints", () => {
  /** Rows of `meta` the database file holds without its WAL: what a checkpoint has copied in. */
  const rowsInDatabaseFile = (file: string) => {
    const copy = `${file}.copy-${Math.random().toString(36).slice(2)}`;
    fs.copyFileSync(file, copy);
    const db = new Database(copy, { readonly: true });
    try {
      // Before the first checkpoint even the schema is only in the WAL.
      const table = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get();
      return table === undefined ? 0 : (db.prepare("SELECT count(*) AS n FROM meta WHERE key LIKE 'ck-%'").get() as { n: number }).n;
    } finally {
      db.close();
      fs.rmSync(copy);
    }
  };

  async function writeAndWait(checkpoint: "thread" | "inline") {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-store-"));
    const store = await openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir, sqliteCheckpoint: checkpoint });
    const file = path.join(dataDir, "gateway.db");
    try {
      // One commit per write, as the audit's group commit makes at a modest rate.
      for (let i = 0; i < 400; i++) await store.setMeta(`ck-${i}`, "x".repeat(200));
      let copied = rowsInDatabaseFile(file);
      for (let waited = 0; copied < 400 && waited < 3000; waited += 50) {
        await new Promise((r) => setTimeout(r, 50));
        copied = rowsInDatabaseFile(file);
      }
      return { copied };
    } finally {
      await store.close();
    }
  }

  it("with the checkpoint thread, every committed row reaches the database file within moments, though no commit crossed the WAL's limit", async () => {
    const { copied } = await writeAndWait("thread");
    expect(copied).toBe(400);
  });

  it("without it, SQLite checkpoints only inside the commit that crosses 1,000 WAL pages: the rows committed since stay in the WAL", async () => {
    const { copied } = await writeAndWait("inline");
    expect(copied).toBeLessThan(400);
  });

  it("closing the store stops the thread and leaves a database that reopens with every row", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-store-"));
    const store = await openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir });
    for (let i = 0; i < 300; i++) await store.setMeta(`ck-${i}`, "y");
    await store.close();
    const reopened = await openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir });
    try {
      expect(await reopened.getMeta("ck-299")).toBe("y");
    } finally {
      await reopened.close();
    }
  });
});
