import { createPublicKey, randomUUID, type KeyObject } from "node:crypto";
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { GatewayError } from "../errors/index.js";
import {
  UniqueViolation,
  type AgentPage,
  type AgentRecord,
  type AgentStatus,
  type KeyAlgorithm,
  type AgentStore,
  type TokenStore,
  type AssertionStore,
  type TokenRecord,
} from "../store/index.js";
import { generateAgentKeyPair, parseAgentPublicKey } from "./agent-keys.js";
import { TOKEN_ALGORITHM, type Keyring } from "./keyring.js";
import { buildAccessClaims, constantTimeEqual, normalizeScopes, payloadFingerprint, shouldRefresh } from "./token-claims.js";

/** Outcome labels of a token check, bounded for metrics. */
export type TokenCheckResult = "valid" | "missing" | "invalid" | "expired" | "not_yet_valid" | "revoked" | "provenance_mismatch" | "suspended" | "too_large";

/** Hooks the composition root wires to metrics and logs; the identity core stays free of them. */
export interface IdentityEvents {
  agentCreated?(agent: AgentRecord): void;
  tokenIssued?(token: TokenRecord): void;
  tokenChecked?(result: TokenCheckResult): void;
  tokensRevoked?(tokenIds: string[], reason: string): void;
  agentStatusChanged?(agent: AgentRecord): void;
}

export interface IdentityOptions {
  store: AgentStore & TokenStore & AssertionStore;
  keyring: Keyring;
  issuer: string;
  now: () => number;
  clockSkewSeconds: number;
  tokenDefaultTtlSeconds: number;
  tokenMaxTtlSeconds: number;
  assertionMaxLifetimeSeconds: number;
  maxTokenBytes: number;
  events?: IdentityEvents;
}

/** What a verified access token tells the rest of the road. */
export interface VerifiedToken {
  tokenId: string;
  agentId: string;
  agentName: string;
  role: string;
  scopes: string[];
  intent: string | undefined;
  issuedAt: number;
  expiresAt: number;
  /** Less than 20 % of the lifetime is left. */
  refreshRecommended: boolean;
}

export interface CreatedAgent {
  agent: AgentRecord;
  /** Present only when the gateway generated the key pair; returned exactly once. */
  privateKeyPem?: string;
}

export interface IssuedToken {
  token: string;
  tokenId: string;
  expiresAt: number;
  scopes: string[];
  intent: string | undefined;
}

export interface IssueTokenRequest {
  agentId: string;
  assertion: string;
  scopes: string[];
  intent?: string;
  ttlSeconds?: number;
}

interface SignedClaims {
  tokenId: string;
  agentId: string;
  scopes: string[];
  intent: string | undefined;
  nbfMs: number;
  expMs: number;
}

interface RegistryEntry {
  agentId: string;
  payloadHash: string;
  issuedAt: number;
  expiresAt: number;
  revoked: boolean;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROLE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const JTI_MAX = 128;
const JTI_PATTERN = new RegExp(`^[\\x20-\\x7e]{1,${JTI_MAX}}$`);

/** The one public answer for every assertion that does not verify; the reason goes to the server log. */
const ASSERTION_INVALID_MESSAGE =
  "the assertion could not be verified for this agent: sign a JWT with the agent's registered private key, with iss = sub = agentId, aud = the gateway's issuer, iat, exp and a fresh jti";
const assertionInvalid = (reason: string) => new GatewayError("assertion_invalid", ASSERTION_INVALID_MESSAGE, { logDetail: `assertion: ${reason}` });

/**
 * Keys no one holds, one per algorithm an agent may use: an assertion for an unknown agent, or one
 * claiming another algorithm than the agent's key, is verified against one of them, so it costs
 * about what a genuine one does and always fails the same way.
 */
const DECOY_ALGORITHMS = ["EdDSA", "ES256", "RS256"] as const;
type DecoyAlgorithm = (typeof DECOY_ALGORITHMS)[number];
const decoyKeys = new Map<DecoyAlgorithm, KeyObject>();

/** The algorithm an assertion's header claims, if it is one agents may use (else EdDSA: it fails anyway). */
function claimedAlgorithmOf(assertion: string): DecoyAlgorithm {
  try {
    const claimed = decodeProtectedHeader(assertion).alg;
    if (DECOY_ALGORITHMS.includes(claimed as DecoyAlgorithm)) return claimed as DecoyAlgorithm;
  } catch {
    // malformed: refused by the verification below
  }
  return "EdDSA";
}

function decoyKeyFor(alg: DecoyAlgorithm): KeyObject {
  let key = decoyKeys.get(alg);
  if (key === undefined) {
    // Made on first use (an RSA pair takes a while); the private halves are dropped at once.
    key = createPublicKey(generateAgentKeyPair(alg).publicKeyPem);
    decoyKeys.set(alg, key);
  }
  return key;
}

/**
 * Agents and their tokens: registration, proof-of-possession token issue, verification with
 * provenance, revocation and suspension. The hot path (verifyAccessToken) reads memory only,
 * except for a token or agent it has never seen (issued by another instance).
 */
export class IdentityService {
  private readonly agents = new Map<string, AgentRecord>();
  private readonly agentKeys = new Map<string, KeyObject>();
  private readonly registry = new Map<string, RegistryEntry>();
  /**
   * Tokens whose signature and claims already verified, keyed by the exact token text, so the hot
   * path pays for an Ed25519 verification once per token rather than once per request. Times,
   * provenance, revocation and agent status are still checked on every request. Bounded.
   */
  private readonly verifiedSignatures = new Map<string, SignedClaims>();
  private static readonly MAX_VERIFIED_CACHE = 50_000;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: IdentityOptions) {}

  /** Starts the periodic sweep of expired registry entries and used assertion ids. */
  start(sweepIntervalMs = 60_000): void {
    this.sweepTimer = setInterval(() => void this.sweep(), sweepIntervalMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
  }

  async sweep(): Promise<void> {
    const now = this.o.now();
    for (const [id, entry] of this.registry) if (entry.expiresAt < now) this.registry.delete(id);
    for (const [raw, claims] of this.verifiedSignatures) if (claims.expMs < now) this.verifiedSignatures.delete(raw);
    await this.o.store.pruneExpired(now).catch(() => undefined);
  }

  // ---------------------------------------------------------------- agents

  /** Registers an agent with its own public key, or generates a pair and returns the private key once. */
  async createAgent(input: { name: string; role: string; publicKey?: unknown; keyAlgorithm?: KeyAlgorithm }): Promise<CreatedAgent> {
    if (!NAME_PATTERN.test(input.name)) {
      throw new GatewayError("invalid_request", "name must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit", {
        details: { field: "name" },
      });
    }
    if (!ROLE_PATTERN.test(input.role)) {
      throw new GatewayError("invalid_request", "role must be 1-64 lower-case characters: letters, digits, '_' or '-', starting with a letter", {
        details: { field: "role" },
      });
    }
    let privateKeyPem: string | undefined;
    let publicKey = input.publicKey;
    if (publicKey === undefined || publicKey === null) {
      const pair = generateAgentKeyPair(input.keyAlgorithm ?? "EdDSA");
      publicKey = pair.publicKeyPem;
      privateKeyPem = pair.privateKeyPem;
    }
    const parsed = parseAgentPublicKey(publicKey);
    const now = this.o.now();
    const agent: AgentRecord = {
      id: `agt_${randomUUID().replaceAll("-", "")}`,
      name: input.name,
      role: input.role,
      status: "active",
      keyAlgorithm: parsed.algorithm,
      publicKeyJwk: parsed.jwk,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.o.store.insertAgent(agent);
    } catch (err) {
      if (err instanceof UniqueViolation) {
        throw new GatewayError("agent_exists", `an agent named "${input.name}" already exists`, { details: { field: "name" } });
      }
      throw err;
    }
    this.remember(agent);
    this.o.events?.agentCreated?.(agent);
    return privateKeyPem === undefined ? { agent } : { agent, privateKeyPem };
  }

  /** @throws GatewayError `agent_not_found` */
  async getAgent(id: string): Promise<AgentRecord> {
    const agent = await this.lookupAgent(id);
    if (agent === undefined) throw new GatewayError("agent_not_found", `no agent with id "${id.slice(0, 80)}"`);
    return agent;
  }

  listAgents(page: AgentPage): Promise<AgentRecord[]> {
    return this.o.store.listAgents(page);
  }

  /** Suspends or re-activates an agent; a suspended agent's tokens fail on the very next request. */
  async setAgentStatus(id: string, status: AgentStatus): Promise<AgentRecord> {
    await this.getAgent(id);
    const updated = await this.o.store.setAgentStatus(id, status, this.o.now());
    if (updated === undefined) throw new GatewayError("agent_not_found", `no agent with id "${id.slice(0, 80)}"`);
    this.remember(updated);
    this.o.events?.agentStatusChanged?.(updated);
    return updated;
  }

  /** Drops an agent from memory so the next use reloads it (a change made by another instance). */
  forgetAgent(id: string): void {
    this.agents.delete(id);
    this.agentKeys.delete(id);
  }

  private remember(agent: AgentRecord): void {
    this.agents.set(agent.id, agent);
    this.agentKeys.delete(agent.id);
  }

  private async lookupAgent(id: string): Promise<AgentRecord | undefined> {
    const cached = this.agents.get(id);
    if (cached !== undefined) return cached;
    const loaded = await this.o.store.getAgent(id);
    if (loaded !== undefined) this.remember(loaded);
    return loaded;
  }

  /** Reads an agent from the store, refreshing the cache only when it changed (its key stays cached). */
  private async reloadAgent(id: string): Promise<AgentRecord | undefined> {
    const loaded = await this.o.store.getAgent(id);
    if (loaded === undefined) return undefined;
    const cached = this.agents.get(id);
    if (cached === undefined || cached.updatedAt !== loaded.updatedAt || cached.status !== loaded.status) this.remember(loaded);
    return this.agents.get(id);
  }

  private agentKey(agent: AgentRecord): KeyObject {
    let key = this.agentKeys.get(agent.id);
    if (key === undefined) {
      key = createPublicKey({ key: agent.publicKeyJwk as never, format: "jwk" });
      this.agentKeys.set(agent.id, key);
    }
    return key;
  }

  // ---------------------------------------------------------------- tokens

  /**
   * Exchanges a signed assertion (proof of possession of the agent's private key) for an access token.
   * `options.extraAudiences`: audiences accepted besides the issuer (the OAuth token endpoint's URLs).
   */
  async issueToken(request: IssueTokenRequest, options: { extraAudiences?: readonly string[] } = {}): Promise<IssuedToken> {
    const now = this.o.now();
    const scopes = normalizeScopes(request.scopes);
    const ttlSeconds = request.ttlSeconds ?? this.o.tokenDefaultTtlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 10 || ttlSeconds > this.o.tokenMaxTtlSeconds) {
      throw new GatewayError("invalid_request", `ttlSeconds must be an integer between 10 and ${this.o.tokenMaxTtlSeconds}`, {
        details: { field: "ttlSeconds" },
      });
    }
    // Proof of possession comes first: until the assertion verifies, every answer is the same
    // (an unknown id, a suspended agent, a wrong key or a malformed assertion all read alike).
    // The agent is read from the store every time, not from the cache, so a known id and an
    // unknown one cost the same read as well.
    const agent = await this.reloadAgent(request.agentId);
    // The signature is always checked with a key of the algorithm the assertion claims: the agent's
    // own when it matches, a decoy otherwise, so neither the answer nor its cost says which it was.
    const claimedAlgorithm = claimedAlgorithmOf(request.assertion);
    const ownKey = agent !== undefined && agent.keyAlgorithm === claimedAlgorithm;
    let payload;
    try {
      ({ payload } = await jwtVerify(request.assertion, ownKey ? this.agentKey(agent) : decoyKeyFor(claimedAlgorithm), {
        algorithms: [claimedAlgorithm],
        issuer: request.agentId,
        subject: request.agentId,
        audience: options.extraAudiences === undefined ? this.o.issuer : [this.o.issuer, ...options.extraAudiences],
        currentDate: new Date(now),
        clockTolerance: this.o.clockSkewSeconds,
        requiredClaims: ["jti", "exp", "iat"],
      }));
    } catch (err) {
      // Only the key's holder can reach an expiry check: the signature is verified first.
      if (err instanceof joseErrors.JWTExpired) throw new GatewayError("assertion_expired", "the assertion has expired: sign a fresh one");
      throw assertionInvalid(
        agent === undefined ? "unknown agent id" : ownKey ? describeJoseError(err) : `algorithm ${claimedAlgorithm} is not the agent's ${agent.keyAlgorithm}`,
      );
    }
    // Unreachable (no one holds a decoy's private key), but never issue on a decoy's word.
    if (!ownKey) throw assertionInvalid("verified against a decoy key");
    if (agent.status !== "active") throw new GatewayError("agent_suspended", `agent ${agent.id} is suspended`);
    const exp = Number(payload.exp) * 1000;
    const iat = Number(payload.iat) * 1000;
    const skewMs = this.o.clockSkewSeconds * 1000;
    if (exp - now > this.o.assertionMaxLifetimeSeconds * 1000 + skewMs) {
      throw new GatewayError("assertion_lifetime_too_long", `assertion exp must be at most ${this.o.assertionMaxLifetimeSeconds} seconds ahead`);
    }
    if (iat > now + skewMs) throw assertionInvalid("iat is in the future");
    const jti = String(payload.jti);
    if (!JTI_PATTERN.test(jti)) throw assertionInvalid(`jti must be 1-${JTI_MAX} printable characters`);
    if (!(await this.o.store.useAssertionJti(agent.id, jti, exp + skewMs))) {
      throw new GatewayError("assertion_replayed", "this assertion was already used: sign a new one with a fresh jti");
    }

    const tokenId = randomUUID();
    const claims = buildAccessClaims({ issuer: this.o.issuer, agentId: agent.id, tokenId, scopes, intent: request.intent, nowMs: now, ttlSeconds });
    const signer = this.o.keyring.current();
    const token = await new SignJWT({ ...claims }).setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: signer.kid, typ: "at+jwt" }).sign(signer.privateKey);
    const record: TokenRecord = {
      id: tokenId,
      agentId: agent.id,
      payloadHash: payloadFingerprint(token),
      scopes,
      intent: request.intent ?? null,
      issuedAt: claims.iat * 1000,
      expiresAt: claims.exp * 1000,
      revokedAt: null,
      revokedReason: null,
    };
    await this.o.store.insertToken(record);
    this.registry.set(tokenId, { agentId: agent.id, payloadHash: record.payloadHash, issuedAt: record.issuedAt, expiresAt: record.expiresAt, revoked: false });
    this.o.events?.tokenIssued?.(record);
    return { token, tokenId, expiresAt: record.expiresAt, scopes, intent: request.intent };
  }

  /**
   * Verifies an access token on the request path: signature (gateway algorithms only), times,
   * issuer, audience, provenance (issued here, payload unchanged), revocation and agent status.
   * @throws GatewayError token_missing | token_too_large | token_invalid | token_expired |
   *   token_not_yet_valid | token_provenance_mismatch | token_revoked | agent_suspended
   */
  async verifyAccessToken(raw: string | undefined): Promise<VerifiedToken> {
    try {
      const verified = await this.verify(raw);
      this.o.events?.tokenChecked?.("valid");
      return verified;
    } catch (err) {
      if (err instanceof GatewayError) this.o.events?.tokenChecked?.(checkResultOf(err.code));
      throw err;
    }
  }

  private async verify(raw: string | undefined): Promise<VerifiedToken> {
    if (raw === undefined || raw.length === 0) {
      throw new GatewayError("token_missing", "send the access token as 'Authorization: Bearer <token>' (get one from POST /api/tokens)");
    }
    if (raw.length > this.o.maxTokenBytes) throw new GatewayError("token_too_large", `the token is longer than ${this.o.maxTokenBytes} bytes`);
    const now = this.o.now();
    const skewMs = this.o.clockSkewSeconds * 1000;
    let claims = this.verifiedSignatures.get(raw);
    if (claims === undefined) {
      claims = await this.verifySignature(raw, now);
      if (this.verifiedSignatures.size >= IdentityService.MAX_VERIFIED_CACHE) this.verifiedSignatures.clear();
      this.verifiedSignatures.set(raw, claims);
    } else if (now >= claims.expMs + skewMs) {
      this.verifiedSignatures.delete(raw);
      throw new GatewayError("token_expired", "the token has expired: request a new one");
    } else if (now < claims.nbfMs - skewMs) {
      throw new GatewayError("token_not_yet_valid", "the token is not valid yet (nbf is in the future)");
    }
    const { tokenId, agentId } = claims;
    const entry = await this.registryEntry(tokenId);
    if (entry === undefined) {
      throw new GatewayError("token_provenance_mismatch", "the token carries this gateway's signature but was never issued by it");
    }
    if (entry.agentId !== agentId || !constantTimeEqual(entry.payloadHash, payloadFingerprint(raw))) {
      throw new GatewayError("token_provenance_mismatch", "the token does not match the one this gateway issued under its id");
    }
    if (entry.revoked) throw new GatewayError("token_revoked", "the token has been revoked");
    const agent = await this.lookupAgent(agentId);
    if (agent === undefined) throw new GatewayError("token_invalid", "the token's agent no longer exists");
    if (agent.status !== "active") throw new GatewayError("agent_suspended", `agent ${agent.id} is suspended`);
    const { scopes, intent } = claims;
    return {
      tokenId,
      agentId,
      agentName: agent.name,
      role: agent.role,
      scopes,
      intent,
      issuedAt: entry.issuedAt,
      expiresAt: entry.expiresAt,
      refreshRecommended: shouldRefresh(entry.issuedAt, entry.expiresAt, now),
    };
  }

  /** The expensive part: header, key, signature and registered claims. */
  private async verifySignature(raw: string, now: number): Promise<SignedClaims> {
    let header;
    try {
      header = decodeProtectedHeader(raw);
    } catch {
      throw new GatewayError("token_invalid", "the token is not a well-formed JWS");
    }
    if (header.alg !== TOKEN_ALGORITHM) {
      throw new GatewayError("token_invalid", `token algorithm ${String(header.alg).slice(0, 20)} is not accepted`);
    }
    if (typeof header.kid !== "string") throw new GatewayError("token_invalid", "the token names no signing key (kid)");
    const key = this.o.keyring.cachedVerificationKey(header.kid) ?? (await this.o.keyring.verificationKey(header.kid));
    if (key === undefined) throw new GatewayError("token_invalid", "the token was not signed by a key of this gateway");
    let payload;
    try {
      ({ payload } = await jwtVerify(raw, key, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: this.o.issuer,
        audience: this.o.issuer,
        typ: "at+jwt",
        currentDate: new Date(now),
        clockTolerance: this.o.clockSkewSeconds,
        requiredClaims: ["jti", "sub", "exp", "iat", "nbf"],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new GatewayError("token_expired", "the token has expired: request a new one");
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === "nbf") {
        throw new GatewayError("token_not_yet_valid", "the token is not valid yet (nbf is in the future)");
      }
      throw new GatewayError("token_invalid", `the token is invalid (${describeJoseError(err)})`);
    }
    return {
      tokenId: String(payload.jti),
      agentId: String(payload.sub),
      scopes: Array.isArray(payload.scp) ? payload.scp.map(String) : [],
      intent: typeof payload.intent === "string" ? payload.intent : undefined,
      nbfMs: Number(payload.nbf) * 1000,
      expMs: Number(payload.exp) * 1000,
    };
  }

  private async registryEntry(tokenId: string): Promise<RegistryEntry | undefined> {
    const cached = this.registry.get(tokenId);
    if (cached !== undefined) return cached;
    const record = await this.o.store.getToken(tokenId);
    if (record === undefined) return undefined;
    const entry: RegistryEntry = {
      agentId: record.agentId,
      payloadHash: record.payloadHash,
      issuedAt: record.issuedAt,
      expiresAt: record.expiresAt,
      revoked: record.revokedAt !== null,
    };
    this.registry.set(tokenId, entry);
    return entry;
  }

  /**
   * Checks again, when deferred work runs (a job, an approved call), a token that verified when the
   * work was accepted: it must not be revoked and its agent must still be active. Reads the store,
   * not this instance's memory, so a change made on any instance is seen. Expiry is not checked:
   * the work was accepted while the token was valid.
   * @throws GatewayError token_revoked | token_invalid | agent_suspended
   */
  async recheckAcceptedToken(accepted: { tokenId: string | undefined; agentId: string; scopes: string[]; intent: string | undefined }): Promise<VerifiedToken> {
    const now = this.o.now();
    const record = accepted.tokenId === undefined ? undefined : await this.o.store.getToken(accepted.tokenId);
    if (accepted.tokenId !== undefined && (record === undefined || record.agentId !== accepted.agentId))
      throw new GatewayError("token_invalid", "the token this work was accepted with is unknown");
    if (record !== undefined && record.revokedAt !== null) {
      this.markRevoked([record.id]);
      throw new GatewayError("token_revoked", "the token this work was accepted with has been revoked");
    }
    const agent = await this.o.store.getAgent(accepted.agentId);
    if (agent === undefined) throw new GatewayError("token_invalid", "the agent this work was accepted for no longer exists");
    this.remember(agent);
    if (agent.status !== "active") throw new GatewayError("agent_suspended", `agent ${agent.id} is suspended`);
    const issuedAt = record?.issuedAt ?? now;
    const expiresAt = record?.expiresAt ?? now;
    return {
      tokenId: accepted.tokenId ?? "",
      agentId: agent.id,
      agentName: agent.name,
      role: agent.role,
      scopes: accepted.scopes,
      intent: accepted.intent,
      issuedAt,
      expiresAt,
      refreshRecommended: false,
    };
  }

  /** Revokes one token; effective on the very next request. @throws GatewayError `not_found` */
  async revokeToken(tokenId: string, reason = "revoked by admin"): Promise<void> {
    const found = await this.o.store.revokeToken(tokenId, this.o.now(), reason);
    if (!found) throw new GatewayError("not_found", `no token with id "${tokenId.slice(0, 80)}"`);
    this.markRevoked([tokenId]);
    this.o.events?.tokensRevoked?.([tokenId], reason);
  }

  /** Revokes every live token of an agent; returns how many. */
  async revokeAgentTokens(agentId: string, reason = "agent tokens revoked by admin"): Promise<number> {
    await this.getAgent(agentId);
    const ids = await this.o.store.revokeAgentTokens(agentId, this.o.now(), reason);
    for (const entry of this.registry.values()) if (entry.agentId === agentId) entry.revoked = true;
    this.markRevoked(ids);
    this.o.events?.tokensRevoked?.(ids, reason);
    return ids.length;
  }

  /** Applies revocations learnt from elsewhere (another instance, a reconcile pass). */
  markRevoked(tokenIds: readonly string[]): void {
    for (const id of tokenIds) {
      const entry = this.registry.get(id);
      if (entry !== undefined) entry.revoked = true;
    }
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "signature does not verify";
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "algorithm not accepted";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof joseErrors.JOSEError) return err.code;
  return "malformed";
}

function checkResultOf(code: string): TokenCheckResult {
  switch (code) {
    case "token_missing":
      return "missing";
    case "token_expired":
      return "expired";
    case "token_not_yet_valid":
      return "not_yet_valid";
    case "token_revoked":
      return "revoked";
    case "token_provenance_mismatch":
      return "provenance_mismatch";
    case "agent_suspended":
      return "suspended";
    case "token_too_large":
      return "too_large";
    default:
      return "invalid";
  }
}

/** One IdentityEvents that forwards every hook to each listener (metrics, cluster sync, tests). */
export function fanOutIdentityEvents(listeners: readonly (IdentityEvents | undefined)[]): IdentityEvents {
  const active = listeners.filter((l): l is IdentityEvents => l !== undefined);
  const each =
    <K extends keyof IdentityEvents>(key: K) =>
    (...args: Parameters<NonNullable<IdentityEvents[K]>>) => {
      for (const l of active) (l[key] as ((...a: typeof args) => void) | undefined)?.(...args);
    };
  return {
    agentCreated: each("agentCreated"),
    tokenIssued: each("tokenIssued"),
    tokenChecked: each("tokenChecked"),
    tokensRevoked: each("tokensRevoked"),
    agentStatusChanged: each("agentStatusChanged"),
  };
}
