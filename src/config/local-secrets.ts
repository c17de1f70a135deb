import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export interface LocalSecret {
  value: string;
  /** True when this call generated the secret (first start). */
  created: boolean;
  file: string;
}

/**
 * Reads a secret kept in `dataDir/fileName`, generating it (mode 0600, never overwritten)
 * on first use. Two processes racing to create it both end up with the winner's value.
 */
export function ensureLocalSecret(dataDir: string, fileName: string, generate: () => string): LocalSecret {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, fileName);
  try {
    fs.writeFileSync(file, `${generate()}\n`, { flag: "wx", mode: 0o600 });
    return { value: fs.readFileSync(file, "utf8").trim(), created: true, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  return { value: fs.readFileSync(file, "utf8").trim(), created: false, file };
}

/** A fresh admin key: 32 random bytes, base64url, with a recognisable prefix. */
export const generateAdminKey = (): string => `gwadm_${randomBytes(32).toString("base64url")}`;
/** A fresh master key: 32 random bytes in base64. */
export const generateMasterKey = (): string => randomBytes(32).toString("base64");
