import { randomUUID, type JsonWebKey, type KeyObject } from "node:crypto";
import fs from "node:fs";
import { GatewayClientError, isGatewayError } from "./errors.js";
import { requestJson, send, type FetchLike, type RequestOptions } from "./http.js";
import { keySigner, signAssertion, type AgentSigner } from "./keys.js";

export interface RetryOptions {
  /** Extra attempts for idempotent actions (default 2); 0 turns retries off. */
  maxRetries?: number;
  /** Longest wait the SDK accepts from a `Retry-After` (default 1000 ms): a longer one is returned to you at once. */
  maxDelayMs?: number;
  /** First backoff after a network failure, doubled each time with jitter (default 100 ms). */
  baseDelayMs?: number;
}

export interface AgentClientOptions {
  baseUrl: string;
  agentId: string;
  /** The agent's private key (PKCS#8 PEM, private JWK or KeyObject). It never leaves this process. Or give `signer`. */
  privateKey?: string | KeyObject | JsonWebKey;
  /** Signs assertions where the key lives (a KMS or an HSM): the SDK never sees the key. */
  signer?: AgentSigner;
  /** Scopes to request, `tool:action` (`tool:*` for every action of a tool). */
  scopes: string[];
  intent?: string;
  ttlSeconds?: number;
  /** The gateway's issuer id (GATEWAY_ISSUER), the audience of assertions. */
  issuer?: string;
  /** Where tokens come from: the gateway's REST route (default) or its OAuth 2.1 token endpoint (client_credentials + private_key_jwt). */
  tokenEndpoint?: "rest" | "oauth";
  retry?: RetryOptions;
  /** Give side-effecting calls an `Idempotency-Key` when the caller did not (default true), so a repeat can never act twice. */
  autoIdempotencyKeys?: boolean;
  fetch?: FetchLike;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface IssuedTokenView {
  token: string;
  /** The token's id (its `jti`): what an operator revokes. */
  tokenId: string;
  expiresAt: string;
  scopes: string[];
}

export interface CallMeta {
  correlationId: string;
  tool: string;
  action: string;
  cache: "hit" | "miss" | "bypass" | "stale" | "none";
  attempts: number;
  upstreamMs: number;
  gatewayMs: number;
  replayed?: boolean;
  /** Fields newer gateways add. */
  [extra: string]: unknown;
}

export interface CallOptions extends RequestOptions {
  /** Replays the first result on a repeat with the same key (and makes a side-effecting call safe to repeat). */
  idempotencyKey?: string;
  /** `bypass` skips the gateway's response cache for this call. */
  cache?: "default" | "bypass";
  /** Overrides what the gateway's catalog says about the action (decides retries and automatic idempotency keys). */
  idempotent?: boolean;
  /** When policy holds the call for a person's approval, wait for the decision and return the executed call's result. */
  waitForApproval?: boolean | WaitOptions;
  traceparent?: string;
}

export interface CallResult<T> {
  data: T;
  meta: CallMeta;
  headers: Headers;
}

export interface WaitOptions {
  /** Give up after this long (default 60 s for jobs, 1 h for approvals) with `wait_timeout`. */
  timeoutMs?: number;
  /** First poll interval (default 250 ms), growing to 5 s. */
  pollMs?: number;
  signal?: AbortSignal;
}

export type JobStatus = "queued" | "running" | "succeeded" | "failed";
export interface JobView {
  jobId: string;
  status: JobStatus;
  tool: string;
  action: string;
  agentId: string;
  attempts: number;
  correlationId: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result?: unknown;
  error?: { code: string; message: string; status: number };
}

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "executed" | "failed";
export interface ApprovalView {
  id: string;
  status: ApprovalStatus;
  agentId: string;
  tool: string;
  action: string;
  argsHash: string;
  expiresAt: string;
  decidedBy?: string | null;
  decisionReason?: string | null;
  result?: unknown;
  error?: { code: string; message: string; status?: number };
}

export interface ToolActionView {
  tool: string;
  action: string;
  description?: string;
  idempotent: boolean;
  cacheable: boolean;
  paramsSchema: Record<string, unknown>;
}

/** The CLI's agent file (`gateway agent create --out …`). */
interface AgentFile {
  gatewayUrl: string;
  agentId: string;
  privateKeyPem: string;
}

const realSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    // An abort's reason is an Error (a DOMException) unless the caller chose otherwise.
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });

/** The `jti` of a gateway token (read, not verified: the gateway verifies it). */
const jtiOf = (token: string): string => {
  try {
    return String((JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti?: unknown }).jti ?? "");
  } catch {
    return "";
  }
};

const TERMINAL_APPROVAL: ReadonlySet<ApprovalStatus> = new Set(["denied", "expired", "executed", "failed"]);

/**
 * An agent's client: proves possession of its key to get tokens, refreshes them before they expire
 * (at 80 % of their lifetime, or as soon as the gateway says `X-Token-Refresh: recommended`), calls
 * every tool through one method, retries idempotent actions when the gateway says when
 * (`Retry-After`), and gives side-effecting calls an idempotency key so a repeat never acts twice.
 */
export class AgentClient {
  private readonly signer: AgentSigner;
  private readonly fetchImpl: FetchLike;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private cached: { token: IssuedTokenView; issuedAt: number; expiresAt: number; refreshSoon: boolean } | undefined;
  private inflight: Promise<IssuedTokenView> | undefined;
  private catalog: Map<string, ToolActionView> | undefined;

  constructor(private readonly o: AgentClientOptions) {
    if (o.signer === undefined && o.privateKey === undefined) throw new Error("AgentClient needs the agent's privateKey or a signer");
    this.signer = o.signer ?? keySigner(o.privateKey!);
    this.fetchImpl = o.fetch ?? ((input, init) => fetch(input, init));
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? realSleep;
    this.random = o.random ?? Math.random;
  }

  /** From the agent file that `gateway agent create` writes (its gateway URL, agent id and private key). */
  static fromFile(file: string, options: Omit<AgentClientOptions, "baseUrl" | "agentId" | "privateKey" | "signer"> & { baseUrl?: string }): AgentClient {
    const agent = JSON.parse(fs.readFileSync(file, "utf8")) as AgentFile;
    return new AgentClient({ ...options, baseUrl: options.baseUrl ?? agent.gatewayUrl, agentId: agent.agentId, privateKey: agent.privateKeyPem });
  }

  /** From the environment: `AGENT_FILE`, or `GATEWAY_URL` + `AGENT_ID` + `AGENT_PRIVATE_KEY` (PEM). */
  static fromEnv(
    options: Omit<AgentClientOptions, "baseUrl" | "agentId" | "privateKey" | "signer">,
    env: Record<string, string | undefined> = process.env,
  ): AgentClient {
    if (env.AGENT_FILE) return AgentClient.fromFile(env.AGENT_FILE, env.GATEWAY_URL ? { ...options, baseUrl: env.GATEWAY_URL } : options);
    const missing = ["GATEWAY_URL", "AGENT_ID", "AGENT_PRIVATE_KEY"].filter((k) => !env[k]);
    if (missing.length > 0) throw new Error(`set AGENT_FILE, or ${missing.join(", ")}`);
    return new AgentClient({ ...options, baseUrl: env.GATEWAY_URL!, agentId: env.AGENT_ID!, privateKey: env.AGENT_PRIVATE_KEY! });
  }

  get agentId(): string {
    return this.o.agentId;
  }

  /** A fresh single-use assertion proving possession of the private key (valid 60 s unless told otherwise). */
  signAssertion(overrides: { jti?: string; expiresInSeconds?: number; audience?: string } = {}): Promise<string> {
    return signAssertion(this.signer, {
      agentId: this.o.agentId,
      audience: overrides.audience ?? this.o.issuer ?? "urn:4runr:gateway",
      nowMs: this.now(),
      ...(overrides.expiresInSeconds !== undefined ? { lifetimeSeconds: overrides.expiresInSeconds } : {}),
      ...(overrides.jti !== undefined ? { jti: overrides.jti } : {}),
    });
  }

  /** Requests a new token (always a round trip), from the REST route or the OAuth token endpoint. */
  async issueToken(request: { scopes?: string[]; intent?: string; ttlSeconds?: number } = {}): Promise<IssuedTokenView> {
    const scopes = request.scopes ?? this.o.scopes;
    if (this.o.tokenEndpoint === "oauth") return this.issueOAuthToken(scopes);
    const body: Record<string, unknown> = { agentId: this.o.agentId, assertion: await this.signAssertion(), scopes };
    const intent = request.intent ?? this.o.intent;
    const ttlSeconds = request.ttlSeconds ?? this.o.ttlSeconds;
    if (intent !== undefined) body.intent = intent;
    if (ttlSeconds !== undefined) body.ttlSeconds = ttlSeconds;
    return (await requestJson<IssuedTokenView>(this.fetchImpl, this.o.baseUrl, "POST", "/api/tokens", undefined, body)).body;
  }

  /** RFC 7523 client credentials: the assertion authenticates the agent (private_key_jwt). */
  private async issueOAuthToken(scopes: string[]): Promise<IssuedTokenView> {
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: this.o.agentId,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: await this.signAssertion(),
      scope: scopes.join(" "),
    });
    const startedAt = this.now();
    const response = await send(this.fetchImpl, new URL("/oauth/token", this.o.baseUrl), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
    });
    const text = await response.text();
    const body = (text ? JSON.parse(text) : {}) as { access_token?: string; expires_in?: number; scope?: string; error?: string; error_description?: string };
    if (!response.ok || body.access_token === undefined) {
      throw new GatewayClientError(
        body.error ?? "oauth_error",
        body.error_description ?? `the token endpoint answered ${response.status}`,
        response.status,
        response.headers.get("x-correlation-id") ?? undefined,
        undefined,
        undefined,
      );
    }
    return {
      token: body.access_token,
      tokenId: jtiOf(body.access_token),
      expiresAt: new Date(startedAt + (body.expires_in ?? 0) * 1000).toISOString(),
      scopes: body.scope ? body.scope.split(" ") : scopes,
    };
  }

  /** The cached token, refreshed at 80 % of its lifetime or when the gateway recommended it; concurrent callers share one refresh. */
  async token(): Promise<string> {
    const now = this.now();
    const c = this.cached;
    if (c !== undefined && !c.refreshSoon && now < c.issuedAt + (c.expiresAt - c.issuedAt) * 0.8) return c.token.token;
    this.inflight ??= this.issueToken().finally(() => {
      this.inflight = undefined;
    });
    const token = await this.inflight;
    this.cached = { token, issuedAt: now, expiresAt: Date.parse(token.expiresAt), refreshSoon: false };
    return token.token;
  }

  /** Forgets the cached token (e.g. after it was revoked). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Every tool and action this agent may call, with parameter schemas. */
  async tools(): Promise<ToolActionView[]> {
    const { body } = await requestJson<{ tools: ToolActionView[] }>(this.fetchImpl, this.o.baseUrl, "GET", "/api/tools", await this.token());
    this.catalog = new Map(body.tools.map((t) => [`${t.tool}:${t.action}`, t]));
    return body.tools;
  }

  private async isIdempotent(tool: string, action: string): Promise<boolean> {
    if (this.catalog === undefined || !this.catalog.has(`${tool}:${action}`)) await this.tools().catch(() => undefined);
    // Unknown to the catalog: treat as side-effecting (never retried, always keyed).
    return this.catalog?.get(`${tool}:${action}`)?.idempotent ?? false;
  }

  /**
   * Calls a tool through the gateway. Idempotent actions are retried (up to `retry.maxRetries`) when
   * the gateway answers 429/503 with a `Retry-After` no longer than `retry.maxDelayMs`, or gives no
   * answer at all; an expired token is replaced once. Side-effecting actions are never retried and
   * carry an `Idempotency-Key` (yours, or a generated one).
   * @throws GatewayClientError with the gateway's code (`approval_pending` when policy holds the call for approval and `waitForApproval` is off)
   */
  async call<T = unknown>(tool: string, action: string, params: Record<string, unknown>, options: CallOptions = {}): Promise<CallResult<T>> {
    const retry = { maxRetries: 2, maxDelayMs: 1000, baseDelayMs: 100, ...this.o.retry };
    const autoKeys = this.o.autoIdempotencyKeys ?? true;
    const keyGiven = options.idempotencyKey !== undefined || Object.keys(options.headers ?? {}).some((k) => k.toLowerCase() === "idempotency-key");
    const needsCatalog = options.idempotent === undefined && (retry.maxRetries > 0 || (autoKeys && !keyGiven));
    const idempotent = options.idempotent ?? (needsCatalog ? await this.isIdempotent(tool, action) : false);
    const headers: Record<string, string> = Object.fromEntries(Object.entries(options.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const key = options.idempotencyKey ?? headers["idempotency-key"] ?? (!idempotent && autoKeys ? randomUUID() : undefined);
    if (key !== undefined) headers["idempotency-key"] = key;
    if (options.cache === "bypass") headers["cache-control"] = "no-cache";
    if (options.traceparent !== undefined) headers.traceparent = options.traceparent;
    let renewedToken = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await requestJson<{ data?: T; meta?: CallMeta; approval?: ApprovalView }>(
          this.fetchImpl,
          this.o.baseUrl,
          "POST",
          "/api/proxy",
          await this.token(),
          { tool, action, params },
          { headers, ...(options.signal ? { signal: options.signal } : {}) },
        );
        this.noteRefreshHint(answer.headers);
        if (answer.status === 202 && answer.body.approval !== undefined) return await this.settleApproval<T>(answer.body.approval, answer.headers, options);
        return { data: answer.body.data as T, meta: answer.body.meta!, headers: answer.headers };
      } catch (err) {
        if (isGatewayError(err, "token_expired") && !renewedToken) {
          renewedToken = true;
          this.invalidate();
          attempt--;
          continue;
        }
        const wait = idempotent && attempt < retry.maxRetries ? this.retryDelayMs(err, attempt, retry) : undefined;
        if (wait === undefined) throw err;
        await this.sleep(wait, options.signal);
      }
    }
  }

  /** How long to wait before retrying `err`, or undefined when it must not be retried. */
  private retryDelayMs(err: unknown, attempt: number, retry: Required<RetryOptions>): number | undefined {
    if (!isGatewayError(err)) return undefined;
    if (err.code === "network_error") return Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt * (0.5 + this.random() / 2));
    if ((err.status === 429 || err.status === 503) && err.retryAfterSeconds !== undefined) {
      const ms = err.retryAfterSeconds * 1000;
      return ms <= retry.maxDelayMs ? ms : undefined;
    }
    return undefined;
  }

  private noteRefreshHint(headers: Headers): void {
    if (headers.get("x-token-refresh") === "recommended" && this.cached !== undefined) this.cached.refreshSoon = true;
  }

  private async settleApproval<T>(approval: ApprovalView, headers: Headers, options: CallOptions): Promise<CallResult<T>> {
    const correlationId = headers.get("x-correlation-id") ?? undefined;
    if (!options.waitForApproval) {
      throw new GatewayClientError(
        "approval_pending",
        `the call is held for a person's approval (approval ${approval.id}, expires ${approval.expiresAt}); wait with waitForApproval()`,
        202,
        correlationId,
        { approval },
        undefined,
      );
    }
    const done = await this.waitForApproval(approval.id, options.waitForApproval === true ? {} : options.waitForApproval);
    if (done.status === "executed")
      return {
        data: done.result as T,
        meta: { correlationId: correlationId ?? "", tool: done.tool, action: done.action, cache: "none", attempts: 1, upstreamMs: 0, gatewayMs: 0 },
        headers,
      };
    if (done.status === "denied")
      throw new GatewayClientError(
        "approval_denied",
        `approval ${done.id} was denied${done.decisionReason ? `: ${done.decisionReason}` : ""}`,
        403,
        correlationId,
        { approval: done },
        undefined,
      );
    if (done.status === "expired")
      throw new GatewayClientError("approval_expired", `approval ${done.id} expired before anyone decided`, 410, correlationId, { approval: done }, undefined);
    throw new GatewayClientError(
      done.error?.code ?? "internal_error",
      done.error?.message ?? `approval ${done.id} ended ${done.status}`,
      done.error?.status ?? 502,
      correlationId,
      { approval: done },
      undefined,
    );
  }

  /** Queues a call to run later (needs `FF_ASYNC=on`); the same checks as `call` run now. */
  async submitJob(
    tool: string,
    action: string,
    params: Record<string, unknown>,
    options: { callbackUrl?: string; idempotencyKey?: string } = {},
  ): Promise<JobView> {
    const headers: Record<string, string> = options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {};
    const body = { tool, action, params, ...(options.callbackUrl ? { callbackUrl: options.callbackUrl } : {}) };
    return (await requestJson<JobView>(this.fetchImpl, this.o.baseUrl, "POST", "/api/jobs", await this.token(), body, { headers })).body;
  }

  async getJob(jobId: string): Promise<JobView> {
    return (await requestJson<JobView>(this.fetchImpl, this.o.baseUrl, "GET", `/api/jobs/${encodeURIComponent(jobId)}`, await this.token())).body;
  }

  /** Polls a job until it succeeded or failed. @throws GatewayClientError wait_timeout */
  waitForJob(jobId: string, options: WaitOptions = {}): Promise<JobView> {
    return this.pollUntil(
      () => this.getJob(jobId),
      (j) => j.status === "succeeded" || j.status === "failed",
      { timeoutMs: 60_000, ...options },
      `job ${jobId}`,
    );
  }

  async getApproval(id: string): Promise<ApprovalView> {
    return (await requestJson<ApprovalView>(this.fetchImpl, this.o.baseUrl, "GET", `/api/approvals/${encodeURIComponent(id)}`, await this.token())).body;
  }

  /** Polls an approval until a person decided and the call ran (or it was denied, expired or failed). @throws GatewayClientError wait_timeout */
  waitForApproval(id: string, options: WaitOptions = {}): Promise<ApprovalView> {
    return this.pollUntil(
      () => this.getApproval(id),
      (a) => TERMINAL_APPROVAL.has(a.status),
      { timeoutMs: 3_600_000, ...options },
      `approval ${id}`,
    );
  }

  private async pollUntil<V>(read: () => Promise<V>, done: (v: V) => boolean, o: WaitOptions & { timeoutMs: number }, what: string): Promise<V> {
    const deadline = this.now() + o.timeoutMs;
    let delay = o.pollMs ?? 250;
    for (;;) {
      const v = await read();
      if (done(v)) return v;
      if (this.now() + delay > deadline)
        throw new GatewayClientError("wait_timeout", `${what} did not finish within ${o.timeoutMs} ms`, 0, undefined, undefined, undefined);
      await this.sleep(delay, o.signal);
      delay = Math.min(5000, Math.round(delay * 1.5));
    }
  }

  /** What the gateway sees in this agent's current token. */
  async whoami(): Promise<Record<string, unknown>> {
    return (await requestJson<Record<string, unknown>>(this.fetchImpl, this.o.baseUrl, "GET", "/api/tokens/self", await this.token())).body;
  }

  /**
   * A `fetch` that sends this agent's current token (refreshed as needed) on every request: hand it to
   * any HTTP client that takes a custom fetch (the OpenAI client, MCP transports).
   */
  readonly authorizedFetch: FetchLike = async (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${await this.token()}`);
    const response = await this.fetchImpl(input, { ...init, headers });
    this.noteRefreshHint(response.headers);
    return response;
  };

  /** Options for the official OpenAI client (`new OpenAI(agent.openAIOptions())`): every model call goes through the gateway as this agent. */
  openAIOptions(): { baseURL: string; apiKey: string; fetch: FetchLike } {
    // The real credential is the agent's token, set per request by authorizedFetch; the client insists on some apiKey.
    return { baseURL: new URL("/v1", this.o.baseUrl).toString(), apiKey: "4runr-agent-token", fetch: this.authorizedFetch };
  }

  /** Where and how an MCP client reaches the gateway's tools: `new StreamableHTTPClientTransport(url, { fetch })`. */
  mcpTransportOptions(): { url: URL; fetch: FetchLike } {
    return { url: new URL("/mcp", this.o.baseUrl), fetch: this.authorizedFetch };
  }
}
