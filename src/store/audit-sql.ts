import type { SqlValue } from "./sql-driver.js";
import type { AuditChainHead, AuditRecord } from "./store.js";

/** The audit_log columns in insert order, and one record's values in that order (shared with the SQLite audit worker). */
export const AUDIT_INSERT_COLUMNS =
  "id, at, correlation_id, agent_id, tool, action, decision, reason, status, latency_ms, upstream_ms, cache, attempts, params_hash, door, operator, prompt_tokens, completion_tokens, total_tokens, chain_id, chain_seq, prev_hash, hash";
export const auditRowValues = (r: AuditRecord): SqlValue[] => [
  r.id,
  r.at,
  r.correlationId,
  r.agentId,
  r.tool,
  r.action,
  r.decision,
  r.reason,
  r.status,
  r.latencyMs,
  r.upstreamMs,
  r.cache,
  r.attempts,
  r.paramsHash,
  r.door ?? null,
  r.operator ?? null,
  r.usage?.promptTokens ?? null,
  r.usage?.completionTokens ?? null,
  r.usage?.totalTokens ?? null,
  r.chainId,
  r.chainSeq,
  r.prevHash,
  r.hash,
];
/** Creates or advances a chain head; `started_at` keeps its first value. */
export const AUDIT_HEAD_UPSERT = `INSERT INTO audit_chains (chain_id, started_at, head_seq, head_hash, head_mac, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (chain_id) DO UPDATE SET head_seq = EXCLUDED.head_seq, head_hash = EXCLUDED.head_hash, head_mac = EXCLUDED.head_mac, updated_at = EXCLUDED.updated_at`;
export const auditHeadValues = (h: AuditChainHead): SqlValue[] => [h.chainId, h.startedAt, h.headSeq, h.headHash, h.headMac, h.updatedAt];
