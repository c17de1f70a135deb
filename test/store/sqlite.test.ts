import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../../src/store/index.js";
import { storeContract } from "./store-contract.js";

storeContract("embedded SQLite", () =>
  openStore({ databaseUrl: undefined, databaseSchema: "public", databasePoolSize: 1, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "4runr-store-")) }),
);
