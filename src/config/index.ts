import path from "node:path";
import { AddressAllowList } from "../net/address-policy.js";
import { parseChaosEnv, type ChaosSettings } from "../resilience/chaos.js";

export type UpstreamMode = "mock" | "live";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface FeatureFlags {
  cache: boolean;
  retry: boolean;
  breakers: boolean;
  policy: boolean;
  async: boolean;
}

/** The one validated, frozen configuration. Only the entry point reads `process.env`. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Unset means the embedded SQLite store in `dataDir`. */
  databaseUrl: string | undefined;
  /** Schema used inside PostgreSQL (tests give each run its own). */
  databaseSchema: string;
  databasePoolSize: number;
  redisUrl: string | undefined;
  /** Unset means generated on first start and stored in `dataDir`. */
  adminKey: string | undefined;
  /** Base64 of 32 bytes; unset means generated on first start and stored in `dataDir`. */
  masterKey: string | undefined;
  logLevel: LogLevel;
  issuer: string;
  tokenDefaultTtlSeconds: number;
  tokenMaxTtlSeconds: number;
  /** Maximum lifetime (exp - now) an agent's signed assertion may claim. */
  assertionMaxLifetimeSeconds: number;
  clockSkewSeconds: number;
  bodyLimitBytes: number;
  /** Tokens longer than this are refused before any parsing. */
  maxTokenBytes: number;
  upstreamMode: UpstreamMode;
  features: FeatureFlags;
  shutdownGraceMs: number;
  /** Ceiling on one upstream attempt; actions have their own, lower defaults. */
  upstreamTimeoutMs: number;
  /** Live-mode API base URLs (tests point them at the mock upstreams). */
  upstreamBaseUrls: { serpapi: string; openai: string; gmail: string };
  /** IPs/CIDRs outbound calls may reach even though they are private (SSRF allow-list). */
  ssrfAllow: string[];
  httpFetchMaxBytes: number;
  httpFetchMaxRedirects: number;
  /** Latency the built-in mock upstreams add in mock mode. */
  mockLatencyMs: number;
  mockJitterMs: number;
  /** Async jobs: worker slots per instance and how long a claimed job is reserved. */
  jobConcurrency: number;
  jobLeaseMs: number;
  /** HMAC key for job callbacks; unset means derived from the master key (same on every instance). */
  jobCallbackSecret: string | undefined;
  /** Key prefix for everything this gateway keeps in Redis (instances of one gateway share it). */
  redisPrefix: string;
  /** How often an instance re-reads revocations and agent changes it may have missed. */
  clusterReconcileMs: number;
  /** When Redis is unreachable: `open` falls back to per-instance limits, `closed` refuses limited calls. */
  redisFailureMode: "open" | "closed";
  /** When the audit trail cannot be written: `closed` refuses calls (503), `open` serves them and counts each one. */
  auditFailureMode: "open" | "closed";
  /** Audit records kept for retry while the store is unreachable; beyond it the oldest are dropped (counted). */
  auditMaxBuffered: number;
  /** Embedded store: audit commits on the event loop, WAL without fsync (`inline`, default), or from a worker thread with an fsync each (`thread`). */
  auditSqliteWriter: "thread" | "inline";
  /** `thread` writer only: fsync each commit (`synchronous=FULL`, survives a power loss; default) or not (`NORMAL`, survives a crash of the gateway, as `inline` does). */
  auditSqliteFsync: boolean;
  /** Embedded store: WAL checkpoints on a thread of their own (`thread`, default) or inside the commit that fills the WAL (`inline`, SQLite's own). */
  sqliteCheckpoint: "thread" | "inline";
  /** Install the default policy set on a store that never had policies. */
  policyDefaults: boolean;
  /** Whether a call whose upstream failed still uses up quota (a quota rule can override). */
  policyCountFailedCalls: boolean;
  /** Ceiling on a whole upstream call, retries and backoff included. */
  upstreamDeadlineMs: number;
  retry: { maxAttempts: number; baseMs: number; maxDelayMs: number; budgetPercent: number };
  breaker: { windowMs: number; minCalls: number; failurePercent: number; coolDownMs: number; halfOpenProbes: number };
  cache: { maxEntries: number; maxBytes: number; maxEntryBytes: number; defaultTtlSeconds: number; staleSeconds: number };
  /** `waitMs`: how long a repeat waits for a first call still running (on any instance) before 409 idempotency_in_flight. */
  idempotency: { ttlSeconds: number; maxKeys: number; waitMs: number; store: "auto" | "memory" | "redis" | "sql" };
  /** Fault injection at start (`CHAOS` JSON); also settable through the admin API. */
  chaos: Record<string, ChaosSettings>;
  /** Seeds the random source of chaos draws and retry jitter (CHAOS_SEED), so a chaos run can be replayed; unseeded by default. */
  chaosSeed: number | undefined;
  /** When set, `/metrics` needs this bearer token. */
  metricsToken: string | undefined;
  /** When set, `/metrics` is served on this port only (on HOST), not on the API port. */
  metricsPort: number | undefined;
  /** OpenTelemetry traces over OTLP/HTTP; undefined (off, and free) unless an OTLP endpoint is set. */
  tracing: TracingConfig | undefined;
  /** Console sessions: absolute lifetime and idle timeout, in seconds. */
  consoleSession: { ttlSeconds: number; idleSeconds: number };
  /** Limits for callers not yet authenticated, in requests per minute (0 = off). */
  preAuthRates: { tokenRequestsPerMinutePerAddress: number; tokenRequestsPerMinutePerAgent: number; anonymousCallsPerMinutePerAddress: number };
  /** Longest time a client may take to send a whole request (headers and body); then 408. */
  requestTimeoutMs: number;
  /** Whose X-Forwarded-For decides the client address: nobody's (false), N proxy hops, or these IPs/CIDRs. */
  trustProxy: false | number | string[];
  /**
   * The URL agents reach this gateway at (`GATEWAY_PUBLIC_URL`): the OAuth issuer, the MCP
   * resource and the token endpoint's audience. Unset: taken from each request's Host.
   */
  publicUrl: string | undefined;
  /**
   * Calls held for a person's approval: a webhook told of every new one (besides those policies
   * name), its body format, the console links it carries, and how often expired ones are marked.
   */
  approvals: { webhookUrl: string | undefined; webhookFormat: "json" | "slack"; consoleUrl: string | undefined; sweepMs: number };
}

/** Raised when configuration is invalid; the message names the offending key. */
/** From the standard `OTEL_*` variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). */
export interface TracingConfig {
  /** Where spans are POSTed (OTLP/HTTP JSON): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  endpoint: string;
  headers: Record<string, string>;
  serviceName: string;
  /** Share of new traces recorded (a caller's sampled flag is followed). */
  sampleRatio: number;
  /** How long spans wait in the batch before export (OTEL_BSP_SCHEDULE_DELAY). */
  exportDelayMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`Invalid configuration ${key}: ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function readInt(env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(key, `expected an integer, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(key, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function readFlag(env: Env, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const v = raw.trim().toLowerCase();
  if (["1", "true", "on", "yes"].includes(v)) return true;
  if (["0", "false", "off", "no"].includes(v)) return false;
  throw new ConfigError(key, `expected on/off (or true/false, 1/0), got "${raw}"`);
}

function readEnum<T extends string>(env: Env, key: string, allowed: readonly T[], fallback: T): T {
  const raw = env[key];
  if (raw === undefined || raw === "") return fallback;
  const v = raw.trim() as T;
  if (!allowed.includes(v)) throw new ConfigError(key, `expected one of ${allowed.join(", ")}, got "${raw}"`);
  return v;
}

function readUrl(env: Env, key: string, fallback: string): string {
  const raw = readString(env, key) ?? fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(key, `expected an http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(key, `expected an http(s) URL, got "${raw}"`);
  return url.toString();
}

function readString(env: Env, key: string): string | undefined {
  const raw = env[key];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

const SAMPLERS: Record<string, number | "arg"> = {
  always_on: 1,
  parentbased_always_on: 1,
  always_off: 0,
  parentbased_always_off: 0,
  traceidratio: "arg",
  parentbased_traceidratio: "arg",
};

function readTracing(env: Env): TracingConfig | undefined {
  if (readString(env, "OTEL_SDK_DISABLED")?.toLowerCase() === "true" || readString(env, "OTEL_TRACES_EXPORTER")?.toLowerCase() === "none") return undefined;
  const tracesEndpoint = readString(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const base = readString(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  const endpoint = tracesEndpoint ?? (base === undefined ? undefined : `${base.replace(/\/+$/, "")}/v1/traces`);
  if (endpoint === undefined) return undefined;
  const key = tracesEndpoint !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  if (!/^https?:\/\/[^\s]+$/.test(endpoint) || !URL.canParse(endpoint))
    throw new ConfigError(key, "expected an http:// or https:// URL of an OTLP/HTTP receiver");
  const headerKey = readString(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS") !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS" : "OTEL_EXPORTER_OTLP_HEADERS";
  const headers: Record<string, string> = {};
  for (const pair of (readString(env, headerKey) ?? "").split(",").filter((p) => p.trim() !== "")) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new ConfigError(headerKey, `expected key=value pairs separated by commas, got "${pair.slice(0, 40)}"`);
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  const samplerName = (readString(env, "OTEL_TRACES_SAMPLER") ?? "parentbased_always_on").toLowerCase();
  const sampler = SAMPLERS[samplerName];
  if (sampler === undefined) throw new ConfigError("OTEL_TRACES_SAMPLER", `one of ${Object.keys(SAMPLERS).join(", ")}`);
  let sampleRatio = sampler === "arg" ? 1 : sampler;
  if (sampler === "arg") {
    const arg = Number(readString(env, "OTEL_TRACES_SAMPLER_ARG") ?? "1");
    if (!(arg >= 0 && arg <= 1)) throw new ConfigError("OTEL_TRACES_SAMPLER_ARG", "a ratio between 0 and 1");
    sampleRatio = arg;
  }
  return {
    endpoint,
    headers,
    serviceName: readString(env, "OTEL_SERVICE_NAME") ?? "4runr-gateway",
    sampleRatio,
    exportDelayMs: readInt(env, "OTEL_BSP_SCHEDULE_DELAY", 5000, 0, 600_000),
  };
}

function readAllowList(env: Env): string[] {
  const entries = (readString(env, "SSRF_ALLOW") ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  try {
    AddressAllowList.parse(entries.join(","));
  } catch (err) {
    throw new ConfigError("SSRF_ALLOW", `${(err as Error).message} (expected comma-separated IPs or CIDRs, e.g. 127.0.0.1/32,10.1.0.0/16)`);
  }
  return entries;
}

function readChaos(env: Env): Record<string, ChaosSettings> {
  try {
    return parseChaosEnv(readString(env, "CHAOS"));
  } catch (err) {
    throw new ConfigError("CHAOS", (err as Error).message);
  }
}

function readTrustProxy(env: Env): false | number | string[] {
  const raw = readString(env, "TRUST_PROXY");
  if (raw === undefined || ["false", "off", "0", "no"].includes(raw.toLowerCase())) return false;
  if (/^\d+$/.test(raw)) return readInt(env, "TRUST_PROXY", 0, 0, 10);
  const entries = raw
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  try {
    AddressAllowList.parse(entries.join(","));
  } catch (err) {
    throw new ConfigError("TRUST_PROXY", `${(err as Error).message} (expected a hop count or comma-separated proxy IPs/CIDRs)`);
  }
  return entries;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Builds the configuration from environment variables; throws `ConfigError` naming the bad key. */
export function loadConfig(env: Env = {}, cwd: string = process.cwd()): Readonly<Config> {
  const databaseUrl = readString(env, "DATABASE_URL");
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL", "expected a postgres:// or postgresql:// URL (leave unset for the embedded store)");
  }
  const redisUrl = readString(env, "REDIS_URL");
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError("REDIS_URL", "expected a redis:// or rediss:// URL");
  }
  const databaseSchema = readString(env, "DATABASE_SCHEMA") ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(databaseSchema)) {
    throw new ConfigError("DATABASE_SCHEMA", "expected a lower-case SQL identifier");
  }
  const adminKey = readString(env, "GATEWAY_ADMIN_KEY");
  if (adminKey !== undefined && adminKey.length < 16) {
    throw new ConfigError("GATEWAY_ADMIN_KEY", "must be at least 16 characters");
  }
  const masterKey = readString(env, "GATEWAY_MASTER_KEY");
  if (masterKey !== undefined && Buffer.from(masterKey, "base64").length !== 32) {
    throw new ConfigError("GATEWAY_MASTER_KEY", "must be 32 bytes encoded in base64 (e.g. `openssl rand -base64 32`)");
  }
  const tokenMaxTtlSeconds = readInt(env, "TOKEN_MAX_TTL_SECONDS", 3600, 60, 86_400);
  const tokenDefaultTtlSeconds = readInt(env, "TOKEN_DEFAULT_TTL_SECONDS", 900, 10, 86_400);
  if (tokenDefaultTtlSeconds > tokenMaxTtlSeconds) {
    throw new ConfigError("TOKEN_DEFAULT_TTL_SECONDS", `must not exceed TOKEN_MAX_TTL_SECONDS (${tokenMaxTtlSeconds})`);
  }
  const host = readString(env, "HOST") ?? "127.0.0.1";

  const config: Config = {
    port: readInt(env, "PORT", 3000, 0, 65_535),
    host,
    dataDir: path.resolve(cwd, readString(env, "DATA_DIR") ?? "data"),
    databaseUrl,
    databaseSchema,
    databasePoolSize: readInt(env, "DATABASE_POOL_SIZE", 10, 1, 200),
    redisUrl,
    adminKey,
    masterKey,
    logLevel: readEnum(env, "LOG_LEVEL", LOG_LEVELS, "info"),
    issuer: readString(env, "GATEWAY_ISSUER") ?? "urn:4runr:gateway",
    tokenDefaultTtlSeconds,
    tokenMaxTtlSeconds,
    assertionMaxLifetimeSeconds: 300,
    clockSkewSeconds: readInt(env, "CLOCK_SKEW_SECONDS", 30, 0, 300),
    bodyLimitBytes: readInt(env, "BODY_LIMIT_BYTES", 1_048_576, 1024, 64 * 1_048_576),
    maxTokenBytes: 8192,
    upstreamMode: readEnum(env, "UPSTREAM_MODE", ["mock", "live"] as const, "mock"),
    features: {
      cache: readFlag(env, "FF_CACHE", true),
      retry: readFlag(env, "FF_RETRY", true),
      breakers: readFlag(env, "FF_BREAKERS", true),
      policy: readFlag(env, "FF_POLICY", true),
      async: readFlag(env, "FF_ASYNC", false),
    },
    shutdownGraceMs: readInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    auditFailureMode: readEnum(env, "AUDIT_FAILURE_MODE", ["closed", "open"] as const, "closed"),
    auditMaxBuffered: readInt(env, "AUDIT_MAX_BUFFERED", 100_000, 100, 10_000_000),
    auditSqliteWriter: readEnum(env, "AUDIT_SQLITE_WRITER", ["thread", "inline"] as const, "inline"),
    auditSqliteFsync: readFlag(env, "AUDIT_SQLITE_FSYNC", true),
    sqliteCheckpoint: readEnum(env, "SQLITE_CHECKPOINT", ["thread", "inline"] as const, "thread"),
    upstreamTimeoutMs: readInt(env, "UPSTREAM_TIMEOUT_MS", 30_000, 50, 600_000),
    upstreamBaseUrls: {
      serpapi: readUrl(env, "SERPAPI_BASE_URL", "https://serpapi.com"),
      openai: readUrl(env, "OPENAI_BASE_URL", "https://api.openai.com"),
      gmail: readUrl(env, "GMAIL_BASE_URL", "https://gmail.googleapis.com"),
    },
    ssrfAllow: readAllowList(env),
    httpFetchMaxBytes: readInt(env, "HTTP_FETCH_MAX_BYTES", 1_048_576, 1, 64 * 1_048_576),
    httpFetchMaxRedirects: readInt(env, "HTTP_FETCH_MAX_REDIRECTS", 5, 0, 20),
    mockLatencyMs: readInt(env, "MOCK_LATENCY_MS", 0, 0, 60_000),
    mockJitterMs: readInt(env, "MOCK_JITTER_MS", 0, 0, 60_000),
    jobConcurrency: readInt(env, "JOB_CONCURRENCY", 4, 1, 256),
    jobLeaseMs: readInt(env, "JOB_LEASE_MS", 30_000, 500, 3_600_000),
    jobCallbackSecret: readString(env, "JOB_CALLBACK_SECRET"),
    redisPrefix: readString(env, "REDIS_PREFIX") ?? "4runr:",
    clusterReconcileMs: readInt(env, "CLUSTER_RECONCILE_MS", 5000, 100, 3_600_000),
    redisFailureMode: readEnum(env, "REDIS_FAILURE_MODE", ["open", "closed"] as const, "open"),
    policyDefaults: readFlag(env, "POLICY_DEFAULTS", true),
    policyCountFailedCalls: readFlag(env, "POLICY_COUNT_FAILED_CALLS", false),
    upstreamDeadlineMs: readInt(env, "UPSTREAM_DEADLINE_MS", 60_000, 50, 3_600_000),
    retry: {
      maxAttempts: readInt(env, "RETRY_MAX_ATTEMPTS", 3, 1, 10),
      baseMs: readInt(env, "RETRY_BASE_MS", 100, 1, 60_000),
      maxDelayMs: readInt(env, "RETRY_MAX_DELAY_MS", 2000, 1, 600_000),
      budgetPercent: readInt(env, "RETRY_BUDGET_PERCENT", 20, 0, 1000),
    },
    breaker: {
      windowMs: readInt(env, "BREAKER_WINDOW_MS", 10_000, 100, 3_600_000),
      minCalls: readInt(env, "BREAKER_MIN_CALLS", 10, 1, 1_000_000),
      failurePercent: readInt(env, "BREAKER_FAILURE_PERCENT", 50, 1, 100),
      coolDownMs: readInt(env, "BREAKER_COOLDOWN_MS", 5_000, 10, 3_600_000),
      halfOpenProbes: readInt(env, "BREAKER_HALF_OPEN_PROBES", 3, 1, 1000),
    },
    cache: {
      maxEntries: readInt(env, "CACHE_MAX_ENTRIES", 10_000, 1, 1_000_000),
      maxBytes: readInt(env, "CACHE_MAX_BYTES", 64 * 1_048_576, 1024, 16 * 1024 * 1_048_576),
      maxEntryBytes: readInt(env, "CACHE_MAX_ENTRY_BYTES", 1_048_576, 1, 1024 * 1_048_576),
      defaultTtlSeconds: readInt(env, "CACHE_DEFAULT_TTL_SECONDS", 60, 1, 86_400 * 30),
      staleSeconds: readInt(env, "CACHE_STALE_SECONDS", 300, 0, 86_400 * 30),
    },
    idempotency: {
      ttlSeconds: readInt(env, "IDEMPOTENCY_TTL_SECONDS", 86_400, 1, 86_400 * 30),
      maxKeys: readInt(env, "IDEMPOTENCY_MAX_KEYS", 100_000, 1, 10_000_000),
      waitMs: readInt(env, "IDEMPOTENCY_WAIT_MS", 5_000, 0, 600_000),
      // auto: Redis when REDIS_URL is set, else the SQL store when it is PostgreSQL, else this process.
      store: readEnum(env, "IDEMPOTENCY_STORE", ["auto", "memory", "redis", "sql"] as const, "auto"),
    },
    chaos: readChaos(env),
    chaosSeed: readString(env, "CHAOS_SEED") === undefined ? undefined : readInt(env, "CHAOS_SEED", 0, 0, 2 ** 32 - 1),
    metricsToken: readString(env, "METRICS_TOKEN"),
    metricsPort: readString(env, "METRICS_PORT") === undefined ? undefined : readInt(env, "METRICS_PORT", 9464, 0, 65_535),
    tracing: readTracing(env),
    consoleSession: {
      ttlSeconds: readInt(env, "CONSOLE_SESSION_TTL_SECONDS", 8 * 3600, 60, 7 * 86_400),
      idleSeconds: readInt(env, "CONSOLE_SESSION_IDLE_SECONDS", 30 * 60, 60, 7 * 86_400),
    },
    preAuthRates: {
      tokenRequestsPerMinutePerAddress: readInt(env, "TOKEN_REQUESTS_PER_MINUTE_PER_ADDRESS", 300, 0, 1_000_000),
      tokenRequestsPerMinutePerAgent: readInt(env, "TOKEN_REQUESTS_PER_MINUTE_PER_AGENT", 60, 0, 1_000_000),
      anonymousCallsPerMinutePerAddress: readInt(env, "ANONYMOUS_CALLS_PER_MINUTE_PER_ADDRESS", 300, 0, 1_000_000),
    },
    trustProxy: readTrustProxy(env),
    requestTimeoutMs: readInt(env, "REQUEST_TIMEOUT_MS", 30_000, 100, 600_000),
    publicUrl: readString(env, "GATEWAY_PUBLIC_URL") === undefined ? undefined : readUrl(env, "GATEWAY_PUBLIC_URL", "").replace(/\/+$/, ""),
    approvals: {
      webhookUrl: readString(env, "APPROVAL_WEBHOOK_URL") === undefined ? undefined : readUrl(env, "APPROVAL_WEBHOOK_URL", ""),
      webhookFormat: readEnum(env, "APPROVAL_WEBHOOK_FORMAT", ["json", "slack"] as const, "json"),
      consoleUrl: readString(env, "APPROVAL_CONSOLE_URL") === undefined ? undefined : readUrl(env, "APPROVAL_CONSOLE_URL", ""),
      sweepMs: readInt(env, "APPROVAL_SWEEP_MS", 5000, 100, 3_600_000),
    },
  };
  if (config.idempotency.store === "redis" && config.redisUrl === undefined) throw new ConfigError("IDEMPOTENCY_STORE", "redis needs REDIS_URL");
  return Object.freeze({
    ...config,
    features: Object.freeze(config.features),
    upstreamBaseUrls: Object.freeze(config.upstreamBaseUrls),
    ssrfAllow: Object.freeze(config.ssrfAllow) as string[],
    preAuthRates: Object.freeze(config.preAuthRates),
    approvals: Object.freeze(config.approvals),
  });
}
