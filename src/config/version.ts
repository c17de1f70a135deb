import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/** The gateway's version from its package.json (found from this file, in src/ or in dist/). */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "4runr-gateway") return (cached = pkg.version ?? "0.0.0");
    }
    if (path.dirname(dir) === dir) return (cached = "0.0.0");
  }
}
