export { AuditLog } from "./audit-log.js";
export type { AuditEntry, AuditLogOptions, AuditEvents, AuditFailureMode, AuditReceipt } from "./audit-log.js";
export { deriveAuditKeys, genesisHash, headMac, paramsHmac, recordHash } from "./chain.js";
export type { AuditKeys } from "./chain.js";
export { verifyAuditTrail } from "./verify.js";
export type { AuditBreak, AuditVerification } from "./verify.js";
