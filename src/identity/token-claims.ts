import { hash, timingSafeEqual } from "node:crypto";
import { GatewayError } from "../errors/index.js";

/** A scope is `tool:action`; either side may be `*`. Lower-case letters, digits, `_` and `-`. */
export const SCOPE_PATTERN = /^(?:[a-z0-9][a-z0-9_-]{0,63}|\*):(?:[a-z0-9][a-z0-9_-]{0,63}|\*)$/;

/** Claims of a gateway-issued access token. */
export interface AccessTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  scp: string[];
  intent?: string;
}

/**
 * Validates and de-duplicates requested scopes (sorted for a stable token).
 * @throws GatewayError `invalid_request` naming the first bad scope.
 */
export function normalizeScopes(scopes: readonly string[]): string[] {
  for (const [i, scope] of scopes.entries()) {
    if (!SCOPE_PATTERN.test(scope)) {
      throw new GatewayError("invalid_request", `scopes[${i}] "${scope.slice(0, 80)}" is not a tool:action scope (e.g. serpapi:search or http_fetch:*)`, {
        details: { field: `scopes[${i}]` },
      });
    }
  }
  return [...new Set(scopes)].sort();
}

/** True when `scope` (which may hold wildcards) covers the call `tool:action`. */
export function scopeCovers(scope: string, tool: string, action: string): boolean {
  const colon = scope.indexOf(":");
  const scopeTool = scope.slice(0, colon);
  const scopeAction = scope.slice(colon + 1);
  return (scopeTool === "*" || scopeTool === tool) && (scopeAction === "*" || scopeAction === action);
}

/** Builds the claims of a new access token; times in seconds since the epoch. */
export function buildAccessClaims(input: {
  issuer: string;
  agentId: string;
  tokenId: string;
  scopes: string[];
  intent: string | undefined;
  nowMs: number;
  ttlSeconds: number;
}): AccessTokenClaims {
  const iat = Math.floor(input.nowMs / 1000);
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    aud: input.issuer,
    sub: input.agentId,
    jti: input.tokenId,
    iat,
    nbf: iat,
    exp: iat + input.ttlSeconds,
    scp: input.scopes,
  };
  if (input.intent !== undefined) claims.intent = input.intent;
  return claims;
}

/** The provenance fingerprint of a compact JWS: sha256 of its payload segment, base64url. */
export function payloadFingerprint(compactJws: string): string {
  const first = compactJws.indexOf(".");
  const second = compactJws.indexOf(".", first + 1);
  return hash("sha256", compactJws.slice(first + 1, second), "base64url");
}

/** Constant-time equality of two strings (length leaks, content does not). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** True when less than `fraction` of the token's lifetime is left: time to fetch a new one. */
export function shouldRefresh(issuedAtMs: number, expiresAtMs: number, nowMs: number, fraction = 0.2): boolean {
  return expiresAtMs - nowMs <= (expiresAtMs - issuedAtMs) * fraction;
}
