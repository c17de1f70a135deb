export { ApprovalService, argsHashOf } from "./service.js";
export type { ApprovalView, ApprovalEvents, ApprovalServiceOptions } from "./service.js";
export { ApprovalStore, APPROVAL_STATUSES } from "./approval-store.js";
export type { ApprovalRecord, ApprovalStatus, ApprovalQuery, NewApproval } from "./approval-store.js";
