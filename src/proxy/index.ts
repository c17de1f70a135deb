export { ToolCatalog } from "./catalog.js";
export type { RoadAction, ResolvedAction, InvokeContext, UpstreamReply } from "./catalog.js";
export { createProxyRoad, canonicalJson, paramsFingerprint } from "./road.js";
export type { ProxyInput, ProxyOutput, ProxyMeta, CacheStatus, Authorizer, AuthorizeGrant, CallToAuthorize, Executor, ExecuteContext, ExecuteResult, RoadEvents, RoadDeps, ProxyRoad, AdmittedCall } from "./road.js";
