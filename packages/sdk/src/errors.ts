/**
 * Every error code the gateway answers with (its catalogue, kept in step by a test in the gateway's
 * repository), plus the SDK's own for failures that never reached the gateway.
 */
export const GATEWAY_ERROR_CODES = [
  "invalid_request",
  "payload_too_large",
  "unsupported_media_type",
  "not_found",
  "method_not_allowed",
  "conflict",
  "uri_too_long",
  "headers_too_large",
  "request_timeout",
  "admin_unauthorized",
  "session_expired",
  "operator_forbidden",
  "csrf_invalid",
  "operator_not_found",
  "token_missing",
  "token_invalid",
  "token_expired",
  "token_not_yet_valid",
  "token_revoked",
  "token_provenance_mismatch",
  "token_too_large",
  "token_scope_exceeded",
  "agent_suspended",
  "agent_not_found",
  "agent_exists",
  "assertion_invalid",
  "assertion_expired",
  "assertion_replayed",
  "assertion_lifetime_too_long",
  "key_invalid",
  "policy_denied",
  "policy_invalid",
  "policy_not_found",
  "scope_denied",
  "intent_required",
  "guard_failed",
  "off_hours",
  "quota_exceeded",
  "rate_limited",
  "unknown_tool",
  "unknown_action",
  "ssrf_blocked",
  "credential_missing",
  "credential_not_found",
  "idempotency_conflict",
  "idempotency_in_flight",
  "upstream_error",
  "upstream_client_error",
  "upstream_timeout",
  "circuit_open",
  "job_not_found",
  "feature_disabled",
  "approval_not_found",
  "approval_expired",
  "approval_already_decided",
  "approval_required",
  "operator_forbidden",
  "service_unavailable",
  "internal_error",
] as const;

/** A code the gateway is known to send. */
export type KnownErrorCode = (typeof GATEWAY_ERROR_CODES)[number];
/** Failures on the client's side: no answer, an answer that is not the gateway's, a wait that ran out, a call held for approval. */
export type ClientErrorCode = "network_error" | "http_error" | "wait_timeout" | "approval_pending" | "approval_denied" | "oauth_error";
/** Any code: the known ones autocomplete, a newer gateway's codes still fit. */
export type ErrorCode = KnownErrorCode | ClientErrorCode | (string & {});

/** A refusal or failure reported by the gateway (or by the SDK on its behalf), with its stable code and correlation id. */
export class GatewayClientError<C extends ErrorCode = ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    readonly status: number,
    readonly correlationId: string | undefined,
    readonly details: Record<string, unknown> | undefined,
    readonly retryAfterSeconds: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GatewayClientError";
  }
}

/**
 * Narrows an unknown error to a gateway error, optionally with one of `codes`:
 * `if (isGatewayError(e, "token_expired", "token_revoked")) …` (then `e.code` is one of those two).
 */
export function isGatewayError<const C extends ErrorCode>(err: unknown, ...codes: C[]): err is GatewayClientError<C> {
  return err instanceof GatewayClientError && (codes.length === 0 || (codes as string[]).includes(err.code as string));
}
