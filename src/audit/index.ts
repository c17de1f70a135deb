export { AuditLog } from "./audit-log.js";
export type { AuditEntry, AuditLogOptions } from "./audit-log.js";
