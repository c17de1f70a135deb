import { createPrivateKey, randomUUID, type KeyObject } from "node:crypto";
import { SignJWT } from "jose";

/** A refusal or failure reported by the gateway, with its stable code and correlation id. */
export class GatewayClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly correlationId: string | undefined,
    readonly details: Record<string, unknown> | undefined,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
    this.name = "GatewayClientError";
  }
}

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function httpRequest<T>(baseUrl: string, method: string, path: string, auth: string | undefined, body?: unknown, options: RequestOptions = {}): Promise<{ body: T; headers: Headers; status: number }> {
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  if (auth !== undefined) headers.authorization = `Bearer ${auth}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (options.signal !== undefined) init.signal = options.signal;
  const response = await fetch(new URL(path, baseUrl), init);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string; correlationId?: string; details?: Record<string, unknown> } } | undefined)?.error;
    const retryAfter = response.headers.get("retry-after");
    throw new GatewayClientError(
      error?.code ?? "http_error",
      error?.message ?? `HTTP ${response.status}`,
      response.status,
      error?.correlationId ?? response.headers.get("x-correlation-id") ?? undefined,
      error?.details,
      retryAfter === null ? undefined : Number(retryAfter),
    );
  }
  return { body: parsed as T, headers: response.headers, status: response.status };
}

export interface AgentView {
  id: string;
  name: string;
  role: string;
  status: "active" | "suspended";
  keyAlgorithm: "EdDSA" | "ES256" | "RS256";
  publicKey: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  privateKey?: string;
}

/** The operator's client: admin routes, authenticated with the admin key. */
export class AdminClient {
  constructor(private readonly o: { baseUrl: string; adminKey: string }) {}

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return httpRequest<T>(this.o.baseUrl, method, path, this.o.adminKey, body).then((r) => r.body);
  }

  createAgent(input: { name: string; role: string; publicKey?: string | Record<string, unknown>; keyAlgorithm?: string }) {
    return this.call<AgentView>("POST", "/api/agents", input);
  }
  listAgents(page: { limit?: number; offset?: number } = {}) {
    const q = new URLSearchParams();
    if (page.limit !== undefined) q.set("limit", String(page.limit));
    if (page.offset !== undefined) q.set("offset", String(page.offset));
    return this.call<{ agents: AgentView[] }>("GET", `/api/agents${q.size > 0 ? `?${q}` : ""}`).then((r) => r.agents);
  }
  getAgent(id: string) {
    return this.call<AgentView>("GET", `/api/agents/${encodeURIComponent(id)}`);
  }
  suspendAgent(id: string) {
    return this.call<AgentView>("POST", `/api/agents/${encodeURIComponent(id)}/suspend`);
  }
  activateAgent(id: string) {
    return this.call<AgentView>("POST", `/api/agents/${encodeURIComponent(id)}/activate`);
  }
  revokeAgentTokens(id: string) {
    return this.call<{ revoked: number }>("POST", `/api/agents/${encodeURIComponent(id)}/revoke-tokens`);
  }
  revokeToken(tokenId: string) {
    return this.call<{ revoked: boolean }>("POST", `/api/tokens/${encodeURIComponent(tokenId)}/revoke`);
  }
  listKeys() {
    return this.call<{ keys: { kid: string; alg: string; active: boolean; createdAt: string; retiredAt: string | null }[] }>("GET", "/api/admin/keys");
  }
  rotateKeys() {
    return this.call<{ kid: string }>("POST", "/api/admin/keys/rotate");
  }
  /** Stores (and by default activates) a tool credential; the answer never contains the secret. */
  putCredential(tool: string, secret: string, options: { description?: string; activate?: boolean } = {}) {
    return this.call<{ tool: string; activeVersion: number | null }>("POST", "/api/credentials", { tool, secret, ...options });
  }
  /** Defines (or replaces) a generic HTTP tool. */
  defineTool(definition: Record<string, unknown>) {
    return this.call<{ tool: Record<string, unknown>; actions: string[] }>("POST", "/api/tools", definition);
  }
  /** Any other admin route, for features this client has no helper for yet. */
  raw<T>(method: string, path: string, body?: unknown) {
    return this.call<T>(method, path, body);
  }
}

export interface AgentClientOptions {
  baseUrl: string;
  agentId: string;
  /** The agent's private key (PKCS#8 PEM or a KeyObject). It never leaves this process. */
  privateKey: string | KeyObject;
  /** Scopes to request, `tool:action`. */
  scopes: string[];
  intent?: string;
  ttlSeconds?: number;
  /** The gateway's issuer id (GATEWAY_ISSUER), the audience of assertions. */
  issuer?: string;
  now?: () => number;
}

export interface IssuedTokenView {
  token: string;
  tokenId: string;
  expiresAt: string;
  scopes: string[];
}

/** Infers the JWS algorithm an agent key signs with. */
export function algorithmOfKey(key: KeyObject): "EdDSA" | "ES256" | "RS256" {
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return "EdDSA";
    case "ec":
      return "ES256";
    case "rsa":
      return "RS256";
    default:
      throw new Error(`unsupported agent key type ${String(key.asymmetricKeyType)}`);
  }
}

/**
 * An agent's client: proves possession of its key to get tokens, caches them, refreshes
 * before expiry (at 80 % of their lifetime) and calls tools through the gateway.
 */
export class AgentClient {
  private readonly key: KeyObject;
  private readonly algorithm: "EdDSA" | "ES256" | "RS256";
  private cached: { token: IssuedTokenView; issuedAt: number; expiresAt: number } | undefined;
  private inflight: Promise<IssuedTokenView> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: AgentClientOptions) {
    this.key = typeof o.privateKey === "string" ? createPrivateKey(o.privateKey) : o.privateKey;
    this.algorithm = algorithmOfKey(this.key);
    this.now = o.now ?? Date.now;
  }

  /** A fresh single-use assertion proving possession of the private key (valid 60 s). */
  signAssertion(overrides: { jti?: string; expiresInSeconds?: number; audience?: string } = {}): Promise<string> {
    const nowSeconds = Math.floor(this.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: this.algorithm, typ: "JWT" })
      .setIssuer(this.o.agentId)
      .setSubject(this.o.agentId)
      .setAudience(overrides.audience ?? this.o.issuer ?? "urn:4runr:gateway")
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + (overrides.expiresInSeconds ?? 60))
      .setJti(overrides.jti ?? randomUUID())
      .sign(this.key);
  }

  /** Requests a new token (always a round trip). */
  async issueToken(request: { scopes?: string[]; intent?: string; ttlSeconds?: number } = {}): Promise<IssuedTokenView> {
    const body: Record<string, unknown> = {
      agentId: this.o.agentId,
      assertion: await this.signAssertion(),
      scopes: request.scopes ?? this.o.scopes,
    };
    const intent = request.intent ?? this.o.intent;
    const ttlSeconds = request.ttlSeconds ?? this.o.ttlSeconds;
    if (intent !== undefined) body.intent = intent;
    if (ttlSeconds !== undefined) body.ttlSeconds = ttlSeconds;
    return (await httpRequest(this.o.baseUrl, "POST", "/api/tokens", undefined, body)).body as IssuedTokenView;
  }

  /** The cached token, refreshed when 80 % of its lifetime has passed; concurrent callers share one refresh. */
  async token(): Promise<string> {
    const now = this.now();
    if (this.cached !== undefined && now < this.cached.issuedAt + (this.cached.expiresAt - this.cached.issuedAt) * 0.8) {
      return this.cached.token.token;
    }
    this.inflight ??= this.issueToken().finally(() => {
      this.inflight = undefined;
    });
    const token = await this.inflight;
    this.cached = { token, issuedAt: now, expiresAt: Date.parse(token.expiresAt) };
    return token.token;
  }

  /** Forgets the cached token (e.g. after it was revoked). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Calls a tool through the gateway's proxy. */
  async call<T = unknown>(tool: string, action: string, params: Record<string, unknown>, options: RequestOptions = {}) {
    const token = await this.token();
    const { body, headers } = await httpRequest(this.o.baseUrl, "POST", "/api/proxy", token, { tool, action, params }, options);
    return { ...(body as { data: T; meta: Record<string, unknown> }), headers };
  }

  /** What the gateway sees in this agent's current token. */
  async whoami() {
    return (await httpRequest(this.o.baseUrl, "GET", "/api/tokens/self", await this.token())).body as Record<string, unknown>;
  }
}

