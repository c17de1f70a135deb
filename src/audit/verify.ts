import type { AuditChainHead, Store } from "../store/index.js";
import { genesisHash, headMac, recordHash } from "./chain.js";

/** Why a chain is broken, at the first link that does not hold. */
export type AuditBreak =
  /** The record at `seq` is not what was written (a field was edited, or its hash was). */
  | { chainId: string; seq: number; recordId: string; problem: "record_altered" }
  /** The record's `prevHash` is not the hash of the record before it (one was replaced or re-linked). */
  | { chainId: string; seq: number; recordId: string; problem: "link_broken" }
  /** Records are missing: `seq` was expected next and the chain goes on at `foundSeq`. */
  | { chainId: string; seq: number; foundSeq: number; problem: "records_missing" }
  /** The chain head was altered, or its records stop before the head (a cut-off tail, from `seq` on). */
  | { chainId: string; seq: number; problem: "head_altered" | "tail_missing" }
  /** Records of a chain whose head is gone from the chain registry. */
  | { chainId: string; seq: number; problem: "head_missing" };

export interface AuditVerification {
  ok: boolean;
  chains: number;
  /** Records checked. */
  records: number;
  /** Records written before chaining existed (cannot be checked). */
  unchained: number;
  /** The first broken link of each broken chain. */
  broken: AuditBreak[];
}

/** Records read per query, so a long trail never holds the event loop (or the memory) for long. */
const PAGE = 1000;

/**
 * Walks every chain from its genesis: each record's sequence number must follow the previous one,
 * its `prevHash` must be the previous record's hash, its hash must match its fields (HMAC with the
 * audit chain key), and the chain's last record must be its MACed head. Reports the first break of
 * each chain. Read-only; reads page by page.
 */
export async function verifyAuditTrail(store: Store, chainKey: Buffer): Promise<AuditVerification> {
  // Heads first: records committed after this snapshot (the gateway keeps writing) lie beyond
  // their head and are left for the next run, so a live trail never looks broken.
  const heads = new Map<string, AuditChainHead>((await store.listAuditChains()).map((h) => [h.chainId, h]));
  const ids = new Set([...heads.keys(), ...(await store.auditChainIds())]);
  const result: AuditVerification = { ok: true, chains: ids.size, records: 0, unchained: await store.countUnchainedAudit(), broken: [] };
  for (const chainId of [...ids].sort()) {
    let head = heads.get(chainId);
    // A chain started after the snapshot: read its head now.
    if (head === undefined) head = (await store.listAuditChains()).find((h) => h.chainId === chainId);
    const brk = await verifyChain(store, chainKey, chainId, head, result);
    if (brk !== undefined) result.broken.push(brk);
  }
  result.ok = result.broken.length === 0;
  return result;
}

async function verifyChain(
  store: Store,
  key: Buffer,
  chainId: string,
  head: AuditChainHead | undefined,
  result: AuditVerification,
): Promise<AuditBreak | undefined> {
  const last = head?.headSeq ?? Number.MAX_SAFE_INTEGER;
  let seq = 0;
  let prev = genesisHash(key, chainId);
  walk: for (;;) {
    const page = await store.auditChainRecords(chainId, seq, PAGE);
    for (const r of page) {
      if (r.chainSeq === null || r.chainSeq > last) break walk;
      result.records++;
      if (r.chainSeq !== seq + 1) return { chainId, seq: seq + 1, foundSeq: r.chainSeq, problem: "records_missing" };
      if (r.prevHash !== prev) return { chainId, seq: r.chainSeq, recordId: r.id, problem: "link_broken" };
      if (r.hash !== recordHash(key, r)) return { chainId, seq: r.chainSeq, recordId: r.id, problem: "record_altered" };
      seq = r.chainSeq;
      prev = r.hash;
    }
    if (page.length < PAGE) break;
    // Let other work run between pages.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (head === undefined) return { chainId, seq: seq + 1, problem: "head_missing" };
  if (head.headMac !== headMac(key, chainId, head.headSeq, head.headHash)) return { chainId, seq: head.headSeq, problem: "head_altered" };
  if (head.headSeq > seq) return { chainId, seq: seq + 1, problem: "tail_missing" };
  if (head.headHash !== prev) return { chainId, seq: head.headSeq, problem: "head_altered" };
  return undefined;
}
