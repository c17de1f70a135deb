/**
 * The one error catalogue of the gateway. Every refusal a client can see has a
 * stable `code` here, and `statusOf` maps each code to its HTTP status, so the
 * compiler refuses a code without a status.
 */
export const statusOf = {
  // request shape
  invalid_request: 400,
  payload_too_large: 413,
  uri_too_long: 414,
  headers_too_large: 431,
  request_timeout: 408,
  unsupported_media_type: 415,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  // admin auth (operators: bootstrap admin key, operator keys, console sessions)
  admin_unauthorized: 401,
  session_expired: 401,
  operator_forbidden: 403,
  csrf_invalid: 403,
  operator_not_found: 404,
  // identity
  token_missing: 401,
  token_invalid: 401,
  token_expired: 401,
  token_not_yet_valid: 401,
  token_revoked: 401,
  token_provenance_mismatch: 401,
  token_too_large: 401,
  token_scope_exceeded: 403,
  agent_suspended: 403,
  agent_not_found: 404,
  agent_exists: 409,
  assertion_invalid: 401,
  assertion_expired: 401,
  assertion_replayed: 401,
  assertion_lifetime_too_long: 401,
  key_invalid: 400,
  // policy and limits
  policy_denied: 403,
  policy_invalid: 400,
  policy_not_found: 404,
  scope_denied: 403,
  intent_required: 403,
  guard_failed: 403,
  off_hours: 403,
  quota_exceeded: 429,
  rate_limited: 429,
  approval_required: 403,
  // tools and upstreams
  unknown_tool: 404,
  unknown_action: 404,
  ssrf_blocked: 403,
  credential_missing: 424,
  credential_not_found: 404,
  idempotency_conflict: 409,
  idempotency_in_flight: 409,
  upstream_error: 502,
  upstream_client_error: 502,
  upstream_timeout: 504,
  circuit_open: 503,
  // jobs
  job_not_found: 404,
  feature_disabled: 404,
  // approvals
  approval_not_found: 404,
  approval_expired: 410,
  approval_already_decided: 409,
  // server
  service_unavailable: 503,
  internal_error: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof statusOf;

export interface GatewayErrorOptions {
  /** Overrides the catalogue's status (e.g. relaying an upstream 4xx as-is). */
  status?: number;
  /** Machine-readable extras: a denial's rule and reason, a field path. Never secrets. */
  details?: Record<string, unknown>;
  /** Seconds after which a retry may succeed; becomes a `Retry-After` header. */
  retryAfterSeconds?: number;
  /** Why, for the server log only (never sent): lets one public message cover many causes. */
  logDetail?: string;
  cause?: unknown;
}

/** An expected refusal: carries a stable code, an HTTP status and a message a person can act on. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly logDetail: string | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.status = options.status ?? statusOf[code];
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.logDetail = options.logDetail;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** The JSON body every error response carries. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    correlationId: string;
    details?: Record<string, unknown>;
  };
}

export function errorBody(err: GatewayError, correlationId: string): ErrorBody {
  const body: ErrorBody = { error: { code: err.code, message: err.message, correlationId } };
  if (err.details !== undefined) body.error.details = err.details;
  return body;
}
