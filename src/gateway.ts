import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { type Config } from "./config/index.js";
import { ensureLocalSecret, generateAdminKey, generateMasterKey } from "./config/local-secrets.js";
import { IdentityService, Keyring, type IdentityEvents } from "./identity/index.js";
import { bearerOf, createAdminGuard } from "./http/auth.js";
import { registerAgentRoutes } from "./http/routes/agents.js";
import { registerHealthRoutes } from "./http/routes/health.js";
import { registerTokenRoutes } from "./http/routes/tokens.js";
import { createHttpServer } from "./http/server.js";
import { createLogger } from "./obs/logger.js";
import { openStore, type Store } from "./store/index.js";
import { AuditLog } from "./audit/index.js";
import { registerAuditRoutes } from "./http/routes/audit.js";
import { registerCredentialRoutes } from "./http/routes/credentials.js";
import { CredentialVault, Redactor } from "./vault/index.js";
import { startMockUpstreams, type MockUpstreams } from "./mock-upstreams/server.js";
import { AddressAllowList } from "./net/address-policy.js";
import { systemResolver } from "./net/outbound.js";
import { createProxyRoad, type Execution } from "./proxy/index.js";
import { ChaosController } from "./resilience/chaos.js";
import { createResilience, type Resilience } from "./resilience/executor.js";
import { MemoryIdempotencyKeys, RedisIdempotencyKeys, SqlIdempotencyKeys, type IdempotencyKeys } from "./resilience/idempotency.js";
import { registerChaosRoutes } from "./http/routes/chaos.js";
import { GatewayMetrics } from "./obs/metrics.js";
import { registerMetricsRoute } from "./http/routes/metrics.js";
import Fastify from "fastify";
import { registerProxyRoutes } from "./http/routes/proxy.js";
import { registerToolAdminRoutes } from "./http/routes/tools.js";
import { mockResolver, Toolbox } from "./tools/index.js";
import { hkdfSync, randomUUID } from "node:crypto";
import { CallbackSender } from "./jobs/callbacks.js";
import { JobStore } from "./jobs/job-store.js";
import { JobService } from "./jobs/service.js";
import { registerJobRoutes } from "./http/routes/jobs.js";
import { LocalBus, RedisBus, type ClusterBus } from "./cluster/bus.js";
import { ClusterSync, changeAnnouncedBy } from "./cluster/sync.js";
import { fanOutIdentityEvents } from "./identity/index.js";
import { MemoryCounters, type Counters } from "./limits/counters.js";
import { FailoverCounters, RedisCounters } from "./limits/redis-counters.js";
import { allowAllAuthorizer, createPolicyAuthorizer } from "./policy/authorizer.js";
import { installDefaultPolicies, PolicyService } from "./policy/service.js";
import { registerPolicyRoutes } from "./http/routes/policies.js";

export interface GatewayDeps {
  logger?: Logger;
  now?: () => number;
  identityEvents?: IdentityEvents;
  /** Shared with the logger's output stream so secrets are scrubbed from every line. */
  redactor?: Redactor;
}

export interface Gateway {
  readonly config: Readonly<Config>;
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly identity: IdentityService;
  readonly keyring: Keyring;
  readonly vault: CredentialVault;
  readonly audit: AuditLog;
  readonly redactor: Redactor;
  readonly logger: Logger;
  readonly toolbox: Toolbox;
  readonly policies: PolicyService;
  readonly metrics: GatewayMetrics;
  /** The metrics listener's URL when METRICS_PORT is set. */
  readonly metricsUrl: () => string | undefined;
  readonly resilience: Resilience;
  readonly counters: Counters;
  /** Async jobs, when FF_ASYNC is on. */
  readonly jobs: JobService | undefined;
  /** Names this process in job leases and cluster messages. */
  readonly instanceId: string;
  readonly cluster: { bus: ClusterBus; sync: ClusterSync };
  /** The built-in mock upstreams, in `UPSTREAM_MODE=mock`. */
  readonly mockUpstreams: MockUpstreams | undefined;
  /** The admin key in force, and whether this start generated it (so it can be printed once). */
  readonly adminKey: { value: string; generated: boolean; file: string | undefined };
  /** Listens on the configured host and port; resolves with the URL actually bound. */
  listen(): Promise<string>;
  /** Stops taking requests, lets in-flight ones finish (bounded by shutdownGraceMs), then closes the store. */
  close(): Promise<void>;
}

/** Wires the whole gateway from a validated configuration: the composition root. */
export async function createGateway(config: Readonly<Config>, deps: GatewayDeps = {}): Promise<Gateway> {
  const redactor = deps.redactor ?? new Redactor();
  const logger = deps.logger ?? createLogger(config.logLevel, undefined, (line) => redactor.redact(line));
  const now = deps.now ?? Date.now;

  const admin =
    config.adminKey !== undefined
      ? { value: config.adminKey, generated: false, file: undefined }
      : (() => {
          const s = ensureLocalSecret(config.dataDir, "admin.key", generateAdminKey);
          return { value: s.value, generated: s.created, file: s.file };
        })();
  const masterKey = Buffer.from(config.masterKey ?? ensureLocalSecret(config.dataDir, "master.key", generateMasterKey).value, "base64");

  const store = await openStore(config);
  let mockUpstreams: MockUpstreams | undefined;
  let toolbox: Toolbox | undefined;
  let jobs: JobService | undefined;
  const instanceId = `gw-${randomUUID().slice(0, 8)}`;
  let sync: ClusterSync | undefined;
  let counters: Counters | undefined;
  let idempotencyKeys: IdempotencyKeys<Execution> | undefined;
  // Gauges read from parts built below; until then they report zero.
  const gaugeSources: { resilience?: Resilience; chaos?: ChaosController; audit?: AuditLog; toolbox?: Toolbox } = {};
  const metrics = new GatewayMetrics({
    cache: () => gaugeSources.resilience?.cacheStats() ?? { entries: 0, bytes: 0 },
    breakers: () => gaugeSources.resilience?.breakerStates() ?? {},
    chaosActive: () => gaugeSources.chaos?.active() ?? false,
    auditBuffered: () => gaugeSources.audit?.pending ?? 0,
    dbPool: () => store.driver.poolStats(),
    redisDegraded: () => counters instanceof FailoverCounters && counters.isDegraded(),
    isGenericTool: (tool) => gaugeSources.toolbox?.catalog.hasTool(tool) ?? false,
  });
  const bus: ClusterBus =
    config.redisUrl === undefined
      ? new LocalBus()
      : new RedisBus(config.redisUrl, { instanceId, prefix: config.redisPrefix, onStatus: (status) => logger.warn({ redis: status }, `cluster bus ${status}`) });
  try {
    const keyring = new Keyring({ store, masterKey, now, retiredKeyGraceMs: config.tokenMaxTtlSeconds * 1000 + 60_000 });
    await keyring.init();
    const identity = new IdentityService({
      store,
      keyring,
      issuer: config.issuer,
      now,
      clockSkewSeconds: config.clockSkewSeconds,
      tokenDefaultTtlSeconds: config.tokenDefaultTtlSeconds,
      tokenMaxTtlSeconds: config.tokenMaxTtlSeconds,
      assertionMaxLifetimeSeconds: config.assertionMaxLifetimeSeconds,
      maxTokenBytes: config.maxTokenBytes,
      events: fanOutIdentityEvents([
        deps.identityEvents,
        metrics.identityEvents(),
        {
          tokensRevoked: (tokenIds) => sync?.announce({ type: "tokens_revoked", tokenIds }),
          agentStatusChanged: (agent) => sync?.announce({ type: "agent_changed", agentId: agent.id }),
        },
      ]),
    });
    identity.start();
    const vault = new CredentialVault({ store, masterKey, now, onSecretsChanged: (secrets) => redactor.setSecrets(secrets) });
    await vault.load();
    const audit = new AuditLog({
      store,
      now,
      onFlushError: (err, buffered) => logger.warn({ err, buffered }, "audit flush failed; records kept for the next try"),
      onDropped: (count) => logger.error({ count }, "audit buffer full: oldest records dropped"),
    });
    audit.start();

    if (config.upstreamMode === "mock") {
      const latency = { baseMs: config.mockLatencyMs, jitterMs: config.mockJitterMs };
      mockUpstreams = await startMockUpstreams({ latency: { serpapi: latency, openai: latency, gmail: latency, web: latency } });
    }
    toolbox = new Toolbox({
      store,
      baseUrls: mockUpstreams ? { serpapi: mockUpstreams.url, openai: mockUpstreams.url, gmail: mockUpstreams.url } : config.upstreamBaseUrls,
      fetchTransport: mockUpstreams ? { kind: "rewrite", origin: mockUpstreams.url } : { kind: "direct" },
      resolver: mockUpstreams ? mockResolver() : systemResolver,
      allowList: new AddressAllowList(config.ssrfAllow),
      httpFetchMaxBytes: config.httpFetchMaxBytes,
      httpFetchMaxRedirects: config.httpFetchMaxRedirects,
    });
    await toolbox.reload();
    if (!config.features.policy) logger.warn("FF_POLICY is off: policy is NOT enforced; any valid token may call any tool");
    const policies = new PolicyService({ store, now });
    if (!config.policyDefaults) await policies.reload();
    else if (await installDefaultPolicies(store, policies)) logger.info("installed the default policy set (see docs/policy.md)");
    if (config.redisUrl !== undefined) {
      const redisCounters = new RedisCounters(config.redisUrl, `${config.redisPrefix}limits:`);
      await redisCounters.ready();
      counters = new FailoverCounters(redisCounters, new MemoryCounters(), config.redisFailureMode, (degraded, err) =>
        degraded
          ? logger.error({ err, mode: config.redisFailureMode }, `Redis unreachable for limits: ${config.redisFailureMode === "open" ? "falling back to per-instance counters" : "refusing limited calls"}`)
          : logger.warn("Redis is back: limits are shared again"),
      );
    } else counters = new MemoryCounters();
    const limitCounters = counters;
    const authorizer = config.features.policy
      ? createPolicyAuthorizer({ policies, counters: limitCounters, now, countFailedCalls: config.policyCountFailedCalls, events: metrics.policyEvents() })
      : allowAllAuthorizer;
    const resilienceMetrics = metrics.resilienceEvents();
    const chaos = new ChaosController(config.chaos);
    if (chaos.active()) logger.warn({ chaos: chaos.describe() }, "CHAOS is on: faults are being injected at the upstream boundary");
    const keys = sharedIdempotencyKeys(config, store);
    idempotencyKeys = keys;
    const resilience = createResilience({
      features: config.features,
      now,
      attemptTimeoutMs: config.upstreamTimeoutMs,
      deadlineMs: config.upstreamDeadlineMs,
      retry: { ...config.retry, budgetRatio: config.retry.budgetPercent / 100, budgetMinRetries: 10 },
      breaker: { ...config.breaker, failureRate: config.breaker.failurePercent / 100 },
      cache: config.cache,
      idempotency: { keys, waitMs: config.idempotency.waitMs },
      chaos,
      events: {
        ...resilienceMetrics,
        breakerTransition: (tool, from, to) => {
          resilienceMetrics.breakerTransition?.(tool, from, to);
          logger.warn({ tool, from, to }, `circuit breaker for ${tool}: ${from} → ${to}`);
        },
      },
    });
    Object.assign(gaugeSources, { resilience, chaos, audit, toolbox });
    const road = createProxyRoad({
      catalog: toolbox.catalog,
      identity,
      vault,
      audit,
      redactor,
      authorizer,
      resilience,
      now,
      events: metrics.roadEvents(),
      onRefundError: (err) => logger.warn({ err }, "quota refund failed; the units stay counted until the window ends"),
    });

    if (config.features.async) {
      const callbackSecret = config.jobCallbackSecret !== undefined ? Buffer.from(config.jobCallbackSecret) : Buffer.from(hkdfSync("sha256", masterKey, Buffer.alloc(0), "4runr job callbacks", 32));
      const client = toolbox.directClient;
      jobs = new JobService({
        store: new JobStore(store.driver),
        road,
        masterKey,
        now,
        instanceId,
        concurrency: config.jobConcurrency,
        leaseMs: config.jobLeaseMs,
        callbacks: new CallbackSender({ client, secret: callbackSecret, now, onFailure: (jobId, reason) => logger.warn({ jobId, reason }, "job callback could not be delivered") }),
        onError: (err, jobId) => logger.error({ err, jobId }, "job worker error"),
      });
      jobs.start();
    }

    const tools = toolbox;
    sync = new ClusterSync({
      bus,
      store,
      identity,
      reload: { credentials: () => vault.load(), tools: () => tools.reload(), policies: () => policies.reload(), signingKeys: () => keyring.refresh() },
      now,
      reconcileMs: config.clusterReconcileMs,
      onError: (err, what) => logger.warn({ err, what }, "cluster sync step failed; the next reconcile retries"),
    });
    sync.start();
    const clusterSync = sync;

    const app = createHttpServer({ logger, bodyLimitBytes: config.bodyLimitBytes });
    app.addHook("onResponse", async (request, reply) => {
      if (reply.statusCode >= 400) return;
      const change = changeAnnouncedBy(request.method, request.url);
      if (change !== undefined) clusterSync.announce(change);
    });
    const requireAdmin = createAdminGuard(admin.value);
    let closingStarted = false;
    registerHealthRoutes(app, {
      checks: [
        { name: "store", check: () => store.ping() },
        ...(bus.kind === "redis" ? [{
              name: "redis",
              check: async () => {
                if (bus.status() !== "up") throw new Error("unreachable; serving with per-instance state until it returns");
              },
            }] : []),
      ],
      isClosing: () => closingStarted,
      describe: () => ({
        store: store.kind,
        upstreamMode: config.upstreamMode,
        features: config.features,
        chaos: { active: chaos.active(), ...(chaos.active() ? { tools: chaos.describe() } : {}) },
        breakers: resilience.breakerStates(),
        ...(config.features.policy ? {} : { warning: "policy enforcement is OFF (FF_POLICY=off)" }),
      }),
    });
    registerAgentRoutes(app, { identity, requireAdmin });
    registerTokenRoutes(app, { identity, keyring, requireAdmin });
    registerCredentialRoutes(app, { vault, requireAdmin });
    registerAuditRoutes(app, { store, audit, requireAdmin });
    registerProxyRoutes(app, {
      handle: road.handle,
      catalog: toolbox.catalog,
      policyEnforced: config.features.policy,
      requireCaller: async (request) => {
        try {
          await requireAdmin(request);
        } catch {
          await identity.verifyAccessToken(bearerOf(request));
        }
      },
    });
    registerToolAdminRoutes(app, { toolbox, requireAdmin });
    registerChaosRoutes(app, { chaos, requireAdmin });
    let metricsApp: ReturnType<typeof Fastify> | undefined;
    if (config.metricsPort === undefined) registerMetricsRoute(app, { metrics, token: config.metricsToken });
    else {
      metricsApp = Fastify({ logger: false });
      registerMetricsRoute(metricsApp, { metrics, token: config.metricsToken });
    }
    registerPolicyRoutes(app, { policies, identity, counters: limitCounters, now, countFailedCalls: config.policyCountFailedCalls, requireAdmin });
    const judge = toolbox.directClient;
    registerJobRoutes(app, { jobs, identity, requireAdmin, judgeCallback: (host) => judge.resolveJudged(host) });
    await app.ready();

    let closing: Promise<void> | undefined;
    return {
      config,
      app,
      store,
      identity,
      keyring,
      vault,
      audit,
      redactor,
      logger,
      toolbox,
      policies,
      metrics,
      metricsUrl: () => {
        const address = metricsApp?.server.address();
        return address && typeof address === "object" ? `http://${address.address}:${address.port}` : undefined;
      },
      resilience,
      counters: limitCounters,
      mockUpstreams,
      jobs,
      instanceId,
      cluster: { bus, sync: clusterSync },
      adminKey: admin,
      async listen() {
        await app.listen({ port: config.port, host: config.host });
        if (metricsApp !== undefined) await metricsApp.listen({ port: config.metricsPort!, host: config.host });
        const address = app.server.address() as AddressInfo;
        const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
        return `http://${host}:${address.port}`;
      },
      close() {
        closing ??= (async () => {
          closingStarted = true;
          identity.stop();
          clusterSync.stop();
          const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
          await Promise.race([app.close(), grace]);
          await metricsApp?.close();
          metrics.close();
          app.server.closeAllConnections?.();
          await jobs?.stop();
          await audit.close();
          await toolbox?.close();
          await mockUpstreams?.close();
          await bus.close();
          await limitCounters.close();
          await idempotencyKeys?.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    sync?.stop();
    await bus.close();
    await counters?.close();
    await idempotencyKeys?.close();
    await jobs?.stop();
    await toolbox?.close();
    await mockUpstreams?.close();
    await store.close();
    throw err;
  }
}

/**
 * Where Idempotency-Keys are claimed (IDEMPOTENCY_STORE): by default Redis when instances share
 * one, else the SQL store when it is PostgreSQL (shared by every instance), else this process.
 */
function sharedIdempotencyKeys(config: Readonly<Config>, store: Store): IdempotencyKeys<Execution> {
  // An unfinished claim must outlive any call: the whole-call deadline plus a margin.
  const times = { ttlMs: config.idempotency.ttlSeconds * 1000, inFlightTtlMs: config.upstreamDeadlineMs + 30_000 };
  const choice = config.idempotency.store === "auto" ? (config.redisUrl !== undefined ? "redis" : store.kind === "postgres" ? "sql" : "memory") : config.idempotency.store;
  if (choice === "redis") {
    if (config.redisUrl === undefined) throw new Error("IDEMPOTENCY_STORE=redis needs REDIS_URL");
    return new RedisIdempotencyKeys(config.redisUrl, { ...times, prefix: config.redisPrefix });
  }
  if (choice === "sql") return new SqlIdempotencyKeys(store.driver, times);
  return new MemoryIdempotencyKeys({ ...times, maxKeys: config.idempotency.maxKeys });
}
