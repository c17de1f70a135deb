import { GatewayError, isGatewayError } from "../errors/index.js";

/** The grant and client authentication this authorization server speaks (RFC 6749 §4.4, RFC 7523 §2.2). */
export const CLIENT_CREDENTIALS = "client_credentials";
export const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** Algorithms an agent's key (and so its client assertion) may use. */
export const ASSERTION_ALGORITHMS = ["EdDSA", "ES256", "RS256"] as const;

/** Where the gateway's OAuth and MCP endpoints live, for one public base URL (no trailing slash). */
export function oauthUrls(base: string) {
  return {
    issuer: base,
    tokenEndpoint: `${base}/oauth/token`,
    authorizationEndpoint: `${base}/oauth/authorize`,
    jwksUri: `${base}/.well-known/jwks.json`,
    mcpResource: `${base}/mcp`,
    resourceMetadata: `${base}/.well-known/oauth-protected-resource`,
  };
}

/** RFC 9728 protected resource metadata of the `/mcp` endpoint. */
export function protectedResourceMetadata(base: string, scopes: readonly string[]) {
  const u = oauthUrls(base);
  return {
    resource: u.mcpResource,
    authorization_servers: [u.issuer],
    scopes_supported: [...scopes],
    bearer_methods_supported: ["header"],
    resource_name: "4Runr Gateway (MCP)",
  };
}

/**
 * RFC 8414 authorization server metadata. Only `client_credentials` with `private_key_jwt` is
 * offered; `authorization_endpoint` and `response_types_supported` are listed only because MCP
 * clients (the official SDK's schema) require them: the endpoint answers `unsupported_response_type`.
 */
export function authorizationServerMetadata(base: string, scopes: readonly string[]) {
  const u = oauthUrls(base);
  return {
    issuer: u.issuer,
    token_endpoint: u.tokenEndpoint,
    jwks_uri: u.jwksUri,
    authorization_endpoint: u.authorizationEndpoint,
    response_types_supported: [] as string[],
    grant_types_supported: [CLIENT_CREDENTIALS],
    token_endpoint_auth_methods_supported: ["private_key_jwt"],
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    scopes_supported: [...scopes],
  };
}

/** The audiences a client assertion sent to the token endpoint may name, besides GATEWAY_ISSUER (RFC 7523 §3). */
export function tokenEndpointAudiences(base: string): string[] {
  const u = oauthUrls(base);
  return [u.issuer, `${u.issuer}/`, u.tokenEndpoint];
}

export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "invalid_target"
  | "unsupported_response_type"
  | "server_error";

/** An error in the RFC 6749 §5.2 shape. */
export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status: number = error === "invalid_client" ? 401 : error === "server_error" ? 500 : 400,
  ) {
    super(description);
  }
  body() {
    return { error: this.error, error_description: this.description };
  }
}

/** Maps the identity service's refusals to the RFC 6749 codes (one code path with /api/tokens). */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  if (!isGatewayError(err)) return new OAuthError("server_error", "the gateway failed to handle this request");
  const e: GatewayError = err;
  switch (e.code) {
    case "assertion_invalid":
      return new OAuthError("invalid_client", e.message);
    case "agent_suspended":
      return new OAuthError("invalid_client", e.message);
    case "assertion_expired":
    case "assertion_replayed":
    case "assertion_lifetime_too_long":
      return new OAuthError("invalid_grant", e.message);
    case "invalid_request":
      // The identity service's only request-shape checks left at this point are the scopes.
      return new OAuthError(String(e.details?.field ?? "").startsWith("scopes") ? "invalid_scope" : "invalid_request", e.message);
    default:
      return new OAuthError(e.status >= 500 ? "server_error" : "invalid_request", e.message, e.status >= 500 ? 503 : 400);
  }
}

/**
 * Parses an `application/x-www-form-urlencoded` token request, refusing repeated parameters
 * (RFC 6749 §3.2: parameters must not be included more than once).
 */
export function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(body)) {
    if (name in out) throw new OAuthError("invalid_request", `parameter ${name.slice(0, 64)} is repeated`);
    out[name] = value;
  }
  return out;
}

export interface ClientCredentialsRequest {
  agentId: string;
  assertion: string;
  scopes: string[];
  intent?: string;
}

/**
 * Validates a client_credentials token request with a private_key_jwt client assertion.
 * `client_id` is optional (RFC 7523 §3): when absent it is read, unverified, from the assertion's
 * `sub`, and the signature check that follows binds it.
 * @throws OAuthError
 */
export function readClientCredentialsRequest(form: Record<string, string>, resourceUrls: readonly string[]): ClientCredentialsRequest {
  const grant = form.grant_type;
  if (grant === undefined || grant.length === 0) throw new OAuthError("invalid_request", "grant_type is required");
  if (grant !== CLIENT_CREDENTIALS) throw new OAuthError("unsupported_grant_type", `grant_type ${grant.slice(0, 64)} is not supported; use client_credentials`);
  if (form.client_assertion_type !== JWT_BEARER_ASSERTION || !form.client_assertion) {
    throw new OAuthError(
      "invalid_client",
      `authenticate with private_key_jwt: client_assertion_type=${JWT_BEARER_ASSERTION} and client_assertion=<JWT signed with the agent's key>`,
    );
  }
  if (form.client_secret !== undefined || form.password !== undefined)
    throw new OAuthError("invalid_client", "only private_key_jwt client authentication is accepted");
  const assertion = form.client_assertion;
  if (assertion.length > 16_384) throw new OAuthError("invalid_client", "client_assertion is too long");
  const subject = unverifiedSubject(assertion);
  const agentId = form.client_id ?? subject;
  if (agentId === undefined || agentId.length === 0 || agentId.length > 128)
    throw new OAuthError("invalid_client", "client_id is missing: send the agent id as client_id");
  if (form.client_id !== undefined && subject !== undefined && subject !== form.client_id)
    throw new OAuthError("invalid_client", "client_id does not match the assertion's subject");
  if (form.resource !== undefined && !resourceUrls.includes(form.resource.replace(/\/+$/, ""))) {
    throw new OAuthError("invalid_target", `this authorization server issues tokens for ${resourceUrls[0]} only`);
  }
  const scope = (form.scope ?? "").trim();
  if (scope.length === 0) throw new OAuthError("invalid_scope", 'scope is required: space-separated tool:action scopes, e.g. "serpapi:search http_fetch:*"');
  const scopes = scope.split(/[ ]+/);
  if (scopes.length > 100) throw new OAuthError("invalid_scope", "at most 100 scopes");
  const request: ClientCredentialsRequest = { agentId, assertion, scopes };
  if (form.intent !== undefined) {
    if (form.intent.length === 0 || form.intent.length > 128) throw new OAuthError("invalid_request", "intent must be 1-128 characters");
    request.intent = form.intent;
  }
  return request;
}

function unverifiedSubject(jwt: string): string | undefined {
  const payload = jwt.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { sub?: unknown };
    return typeof claims.sub === "string" ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}
