import { createHmac, hkdfSync } from "node:crypto";
import type { AuditRecord } from "../store/index.js";
import { canonicalJson } from "../util/canonical-json.js";

/** The audit trail's keys, both derived from the master key (same on every instance of one gateway). */
export interface AuditKeys {
  /** MACs each record into its chain and each chain head. */
  chain: Buffer;
  /** Keys the parameters' fingerprint, so a short parameter cannot be confirmed by hashing guesses. */
  params: Buffer;
}

const derive = (masterKey: Buffer, info: string) => Buffer.from(hkdfSync("sha256", masterKey, Buffer.alloc(0), info, 32));

/** Derives the audit keys from the master key (HKDF-SHA256, one `info` label per use, like the job callback key). */
export function deriveAuditKeys(masterKey: Buffer): AuditKeys {
  return { chain: derive(masterKey, "4runr audit chain"), params: derive(masterKey, "4runr audit params") };
}

const mac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest("base64url");

/** The `prevHash` of a chain's first record: bound to the chain id, so records cannot move between chains. */
export const genesisHash = (key: Buffer, chainId: string): string => mac(key, `genesis|${chainId}`);

/**
 * A record's link: HMAC over the previous link and every field of the record but the two links.
 * Fields that are null (or absent) are left out, so a column added later with a null default
 * does not change the hash of records written before it.
 */
export function recordHash(key: Buffer, record: AuditRecord): string {
  return mac(key, `${record.prevHash ?? ""}|${canonicalFields(record)}`);
}

/** Records are built by a few code paths, each with its own key order: each order is sorted once. */
const sortedKeyOrders = new Map<string, { key: string; quoted: string }[]>();

/**
 * `canonicalJson` of the record's fields but the links and the null ones (the same text, so every
 * chain written before verifies), without sorting the keys of every record anew.
 */
function canonicalFields(record: AuditRecord): string {
  const keys = Object.keys(record);
  const shape = keys.join(",");
  let sorted = sortedKeyOrders.get(shape);
  if (sorted === undefined) {
    sorted = keys
      .filter((k) => k !== "hash" && k !== "prevHash")
      .sort()
      .map((k) => ({ key: k, quoted: JSON.stringify(k) }));
    if (sortedKeyOrders.size < 64) sortedKeyOrders.set(shape, sorted);
  }
  const values = record as unknown as Record<string, unknown>;
  let text = "";
  for (const { key: k, quoted } of sorted) {
    const v = values[k];
    if (v === null || v === undefined) continue;
    text += `${text === "" ? "" : ","}${quoted}:${canonicalJson(v)}`;
  }
  return `{${text}}`;
}

/** The MAC of a chain head: whoever edits the head (to hide a cut-off tail) needs the key. */
export const headMac = (key: Buffer, chainId: string, seq: number, hash: string): string => mac(key, `head|${chainId}|${seq}|${hash}`);

/** The audit trail's fingerprint of a call's parameters: an HMAC, never the parameters. */
export function paramsHmac(key: Buffer, params: unknown): string {
  return mac(key, canonicalJson(params)).slice(0, 22);
}
