export { ToolCatalog } from "./catalog.js";
export type { RoadAction, ResolvedAction, InvokeContext, UpstreamReply, ActionHints } from "./catalog.js";
export { createProxyRoad, roadStages, ACCEPTANCE_ENDS_AFTER } from "./road.js";
export type { ProxyInput, ProxyOutput, HeldOutput, ProxyMeta, RoadDeps, ProxyRoad, AcceptedCall } from "./road.js";
export { DOORS, compose, stage } from "./call.js";
export type { Door, CacheStatus, CallOutcome, Execution, Stage, Next, ToolCall, QuotaCharge, HeldApproval } from "./call.js";
export type { Authorizer, CallToAuthorize, RoadEvents, AuditSink, ApprovalHolder, ApprovalHandling, Charge, HeldCall } from "./stages.js";
export { canonicalJson } from "../util/canonical-json.js";
export { paramsFingerprint } from "../resilience/executor.js";
