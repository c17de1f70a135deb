/**
 * @4runr/gateway-sdk: the agent side (tokens by proof of possession, one call API for every tool,
 * jobs, approvals, OpenAI and MCP client options) and the operator side (the admin API), with typed
 * errors. Node built-ins only.
 */
export {
  AdminClient,
  type AgentView,
  type AuditQuery,
  type AuditRecordView,
  type CredentialView,
  type OperatorRole,
  type OperatorView,
  type PolicyView,
} from "./admin.js";
export {
  AgentClient,
  type AgentClientOptions,
  type ApprovalStatus,
  type ApprovalView,
  type CallMeta,
  type CallOptions,
  type CallResult,
  type IssuedTokenView,
  type JobStatus,
  type JobView,
  type RetryOptions,
  type ToolActionView,
  type WaitOptions,
} from "./agent.js";
export { GATEWAY_ERROR_CODES, GatewayClientError, isGatewayError, type ClientErrorCode, type ErrorCode, type KnownErrorCode } from "./errors.js";
export { retryAfterSecondsOf, type FetchLike, type RequestOptions } from "./http.js";
export { algorithmOfKey, keySigner, signAssertion, type AgentSigner, type SigningAlgorithm } from "./keys.js";
