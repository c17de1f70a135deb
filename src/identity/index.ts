export { IdentityService, fanOutIdentityEvents } from "./service.js";
export type { IdentityEvents, IdentityOptions, VerifiedToken, CreatedAgent, IssuedToken, IssueTokenRequest, TokenCheckResult } from "./service.js";
export { Keyring, TOKEN_ALGORITHM } from "./keyring.js";
export { parseAgentPublicKey, generateAgentKeyPair } from "./agent-keys.js";
export type { AgentPublicKey, GeneratedKeyPair } from "./agent-keys.js";
export { normalizeScopes, scopeCovers, payloadFingerprint, constantTimeEqual, shouldRefresh, SCOPE_PATTERN } from "./token-claims.js";
export type { AccessTokenClaims } from "./token-claims.js";
