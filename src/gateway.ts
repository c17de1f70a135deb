import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { type Config } from "./config/index.js";
import { ensureLocalSecret, generateAdminKey, generateMasterKey } from "./config/local-secrets.js";
import { IdentityService, Keyring, type IdentityEvents } from "./identity/index.js";
import { registerAgentRoutes } from "./http/routes/agents.js";
import { registerHealthRoutes } from "./http/routes/health.js";
import { registerTokenRoutes } from "./http/routes/tokens.js";
import { createHttpServer } from "./http/server.js";
import { createLogger } from "./obs/logger.js";
import { openStore, type AuditWriter, type SqlStore, type Store } from "./store/index.js";
import { AuditLog, deriveAuditKeys, verifyAuditTrail } from "./audit/index.js";
import { registerAuditRoutes } from "./http/routes/audit.js";
import { registerCredentialRoutes } from "./http/routes/credentials.js";
import { CredentialVault, Redactor } from "./vault/index.js";
import { startMockUpstreams, type MockUpstreams } from "./mock-upstreams/server.js";
import { AddressAllowList } from "./net/address-policy.js";
import { systemResolver } from "./net/outbound.js";
import { createProxyRoad, type Execution, type ProxyOutput, type ProxyRoad } from "./proxy/index.js";
import { GatewayError } from "./errors/index.js";
import { ChaosController, seededRandom } from "./resilience/chaos.js";
import { createResilience, type Resilience } from "./resilience/executor.js";
import { FailoverIdempotencyKeys, MemoryIdempotencyKeys, RedisIdempotencyKeys, SqlIdempotencyKeys, type IdempotencyKeys } from "./resilience/idempotency.js";
import { registerChaosRoutes } from "./http/routes/chaos.js";
import { GatewayMetrics } from "./obs/metrics.js";
import { registerMetricsRoute } from "./http/routes/metrics.js";
import Fastify from "fastify";
import { registerProxyRoutes } from "./http/routes/proxy.js";
import { registerToolRoutes } from "./http/routes/tools.js";
import { PreAuthLimiter } from "./limits/pre-auth.js";
import { BUILTIN_TOOLS, mockResolver, Toolbox } from "./tools/index.js";
import { hkdfSync, randomUUID } from "node:crypto";
import { CallbackSender } from "./jobs/callbacks.js";
import { JobStore } from "./jobs/job-store.js";
import { JobService } from "./jobs/service.js";
import { registerJobRoutes } from "./http/routes/jobs.js";
import { LocalBus, RedisBus, type ClusterBus } from "./cluster/bus.js";
import { ClusterSync } from "./cluster/sync.js";
import { ChangeFeed } from "./cluster/changes.js";
import { fanOutIdentityEvents } from "./identity/index.js";
import { MemoryCounters, type Counters } from "./limits/counters.js";
import { FailoverCounters, RedisCounters } from "./limits/redis-counters.js";
import { allowAllAuthorizer, createPolicyAuthorizer } from "./policy/authorizer.js";
import { installDefaultPolicies, PolicyService } from "./policy/service.js";
import { registerPolicyRoutes } from "./http/routes/policies.js";
import { chatPermission } from "./openai-compat/index.js";
import { registerOpenAICompatRoutes } from "./http/routes/openai-compat.js";
import { packageVersion } from "./config/version.js";
import { OperatorService, sameSecret } from "./operators/index.js";
import { CSRF_HEADER, installOperatorAuth, type DeclaredRoute } from "./http/operator-auth.js";
import { registerOperatorRoutes } from "./http/routes/operators.js";
import { registerConsoleApiRoutes } from "./http/routes/console.js";
import { defaultConsoleDir, registerConsoleAssets } from "./http/console-assets.js";
import { registerOAuthRoutes } from "./http/routes/oauth.js";
import { registerMcpRoutes } from "./http/routes/mcp.js";
import { McpToolView } from "./mcp/tool-view.js";
import { McpUpstreams } from "./mcp/upstream.js";
import { registerMcpServerRoutes } from "./http/routes/mcp-servers.js";
import { visibleTo } from "./policy/visibility.js";
import { ApprovalService, ApprovalStore } from "./approvals/index.js";
import { registerApprovalRoutes } from "./http/routes/approvals.js";

export interface GatewayDeps {
  logger?: Logger;
  now?: () => number;
  identityEvents?: IdentityEvents;
  /** Shared with the logger's output stream so secrets are scrubbed from every line. */
  redactor?: Redactor;
  /** Where the built console is served from (default: dist/console at the repository root). */
  consoleDir?: string;
  /** Wraps or replaces the store's audit writer (benchmarks compare writers; tests inject failures). */
  auditWriter?: (store: Store) => AuditWriter;
}

export interface Gateway {
  readonly config: Readonly<Config>;
  readonly app: FastifyInstance;
  /** The SQL store (its driver is for the parts that keep tables of their own; services get port slices). */
  readonly store: SqlStore;
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
  /** Calls held for a person's approval (always on: policy decides which calls). */
  readonly approvals: ApprovalService;
  /** Names this process in job leases and cluster messages. */
  readonly instanceId: string;
  readonly cluster: { bus: ClusterBus; sync: ClusterSync };
  /**
   * The road every door runs: `road.handle({ ...input, door })` for a live call (REST, MCP, the
   * OpenAI-compatible endpoint), `road.accept` / `road.runAccepted` for deferred work (jobs, approvals).
   */
  readonly road: ProxyRoad;
  /** The typed change events services publish (agent suspended, token revoked, credential activated…). */
  readonly changes: ChangeFeed;
  /** The built-in mock upstreams, in `UPSTREAM_MODE=mock`. */
  readonly mockUpstreams: MockUpstreams | undefined;
  /** The admin key in force, and whether this start generated it (so it can be printed once). */
  readonly adminKey: { value: string; generated: boolean; file: string | undefined };
  /** Named operators with roles, and console sessions. */
  readonly operators: OperatorService;
  /** Every HTTP route as registered (method, URL pattern, and the operator role it declares; none: public, or an agent's). */
  readonly routes: readonly DeclaredRoute[];
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
  // Every part registers how to stop it as it is built; a failed start and close() run the same
  // list, last built first, so the two can never drift apart.
  const stops: { part: string; stop: () => unknown }[] = [];
  const onStop = (part: string, stop: () => unknown) => void stops.push({ part, stop });
  const stopAll = async () => {
    for (const { part, stop } of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        logger.warn({ err, part }, "stopping a part of the gateway failed");
      }
    }
  };
  onStop("store", () => store.close());
  // Services publish their own typed change events here; the cluster sync puts them on the bus.
  const changes = new ChangeFeed();
  const instanceId = `gw-${randomUUID().slice(0, 8)}`;
  // Gauges are pointed at the parts once they exist (metrics.observe below); hooks are wired as parts are built.
  const metrics = new GatewayMetrics();

  onStop("metrics", () => metrics.close());
  const bus: ClusterBus =
    config.redisUrl === undefined
      ? new LocalBus()
      : new RedisBus(config.redisUrl, {
          instanceId,
          prefix: config.redisPrefix,
          onStatus: (status) => logger.warn({ redis: status }, `cluster bus ${status}`),
        });
  onStop("cluster bus", () => bus.close());
  try {
    const keyring = new Keyring({
      store,
      masterKey,
      now,
      retiredKeyGraceMs: config.tokenMaxTtlSeconds * 1000 + 60_000,
      onRotated: (change) => changes.publish(change),
    });
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
          agentCreated: (agent) => changes.publish({ type: "agent_created", agentId: agent.id }),
          agentStatusChanged: (agent) => changes.publish({ type: "agent_status_changed", agentId: agent.id, status: agent.status }),
          tokensRevoked: (tokenIds) => changes.publish({ type: "tokens_revoked", tokenIds }),
        },
      ]),
    });
    identity.start();
    onStop("identity sweep", () => identity.stop());
    const vault = new CredentialVault({
      store,
      masterKey,
      now,
      onSecretsChanged: (secrets) => redactor.setSecrets(secrets),
      onChange: (change) => changes.publish(change),
    });
    await vault.load();
    const auditKeys = deriveAuditKeys(masterKey);
    const auditMetrics = metrics.auditEvents();
    const audit = new AuditLog({
      writer: deps.auditWriter?.(store) ?? store.openAuditWriter({ sqlite: config.auditSqliteWriter, fsync: config.auditSqliteFsync }),
      now,
      chainId: instanceId,
      keys: auditKeys,
      failureMode: config.auditFailureMode,
      maxBuffered: config.auditMaxBuffered,
      events: {
        ...auditMetrics,
        healthChanged: (healthy, err) =>
          healthy
            ? logger.warn("audit trail is writable again: buffered records written")
            : logger.error(
                { err, mode: config.auditFailureMode },
                `audit trail cannot be written: ${config.auditFailureMode === "closed" ? "refusing calls (503)" : "serving calls without durable records (counted)"} until it can`,
              ),
        dropped: (count) => {
          auditMetrics.dropped?.(count);
          logger.error({ count }, "audit retry buffer full: oldest records dropped (AUDIT_MAX_BUFFERED)");
        },
        lostAtClose: (count) => {
          auditMetrics.lostAtClose?.(count);
          logger.error({ count }, "audit records could not be written before shutdown: the store stayed unreachable");
        },
      },
    });
    onStop("audit", () => audit.close());

    const latency = { baseMs: config.mockLatencyMs, jitterMs: config.mockJitterMs };
    const mockUpstreams =
      config.upstreamMode === "mock" ? await startMockUpstreams({ latency: { serpapi: latency, openai: latency, gmail: latency, web: latency } }) : undefined;
    if (mockUpstreams !== undefined) onStop("mock upstreams", () => mockUpstreams.close());
    const toolbox = new Toolbox({
      store,
      baseUrls: mockUpstreams ? { serpapi: mockUpstreams.url, openai: mockUpstreams.url, gmail: mockUpstreams.url } : config.upstreamBaseUrls,
      fetchTransport: mockUpstreams ? { kind: "rewrite", origin: mockUpstreams.url } : { kind: "direct" },
      resolver: mockUpstreams ? mockResolver() : systemResolver,
      allowList: new AddressAllowList(config.ssrfAllow),
      httpFetchMaxBytes: config.httpFetchMaxBytes,
      httpFetchMaxRedirects: config.httpFetchMaxRedirects,
      onChange: (change) => changes.publish(change),
      onUnusableTool: (name, reason) => logger.error({ tool: name, reason }, `generic tool ${name} cannot be loaded and is unavailable: define it again`),
    });
    onStop("toolbox", () => toolbox.close());
    await toolbox.reload();
    const mcpUpstreams = new McpUpstreams({
      store,
      catalog: toolbox.catalog,
      client: toolbox.directClient,
      secretFor: (tool) => vault.secretFor(tool),
      takenNames: () => [...BUILTIN_TOOLS, ...toolbox.listGeneric().map((d) => d.name)],
      now,
      onChange: (change) => changes.publish(change),
      onError: (err, server) => logger.warn({ err, server }, "MCP server tool refresh failed"),
    });
    onStop("upstream MCP sessions", () => mcpUpstreams.close());
    await mcpUpstreams.reload();
    if (!config.features.policy) logger.warn("FF_POLICY is off: policy is NOT enforced; any valid token may call any tool");
    const policies = new PolicyService({ store, now, onChange: (change) => changes.publish(change) });
    if (!config.policyDefaults) await policies.reload();
    else if (await installDefaultPolicies(store, policies)) logger.info("installed the default policy set (see docs/policy.md)");
    const limitCounters = await openCounters(config, logger);
    onStop("limit counters", () => limitCounters.close());
    const authorizer = config.features.policy
      ? createPolicyAuthorizer({ policies, counters: limitCounters, now, countFailedCalls: config.policyCountFailedCalls, events: metrics.policyEvents() })
      : allowAllAuthorizer;
    const resilienceMetrics = metrics.resilienceEvents();
    const chaos = new ChaosController(config.chaos);
    if (chaos.active()) logger.warn({ chaos: chaos.describe() }, "CHAOS is on: faults are being injected at the upstream boundary");
    const keys = sharedIdempotencyKeys(config, store, logger);
    if (keys instanceof SqlIdempotencyKeys) {
      // Expired keys are ignored by claims; the sweep only keeps the table small.
      const sweep = setInterval(() => void keys.sweep(now()).catch((err: unknown) => logger.warn({ err }, "idempotency key sweep failed")), 60_000);
      sweep.unref();
      onStop("idempotency key sweep", () => clearInterval(sweep));
    }
    onStop("idempotency keys", () => keys.close());
    const resilience = createResilience({
      features: config.features,
      now,
      ...(config.chaosSeed === undefined ? {} : { random: seededRandom(config.chaosSeed) }),
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
    metrics.observe({
      cache: () => resilience.cacheStats(),
      breakers: () => resilience.breakerStates(),
      chaosActive: () => chaos.active(),
      auditBuffered: () => audit.pending,
      auditHealthy: () => audit.isHealthy,
      dbPool: () => store.driver.poolStats(),
      redisDegraded: () =>
        (limitCounters instanceof FailoverCounters && limitCounters.isDegraded()) || (keys instanceof FailoverIdempotencyKeys && keys.isDegraded()),
      isGenericTool: (tool) => toolbox.catalog.hasTool(tool),
    });
    const tracing = config.tracing === undefined ? undefined : (await import("./obs/tracing-sdk.js")).createTracing(config.tracing, packageVersion());
    if (tracing !== undefined) onStop("tracing", () => tracing.shutdown());
    // One signer for job callbacks, approval notifications and approval callbacks (same secret, same SSRF-judged client).
    const callbackSecret =
      config.jobCallbackSecret !== undefined
        ? Buffer.from(config.jobCallbackSecret)
        : Buffer.from(hkdfSync("sha256", masterKey, Buffer.alloc(0), "4runr job callbacks", 32));
    const client = toolbox.directClient;
    const approvals = new ApprovalService({
      store: new ApprovalStore(store.driver),
      // The road is built just below; an approval is only ever decided after that.
      runApproved: (call, correlationId) => road.runAccepted(call, correlationId, "approval"),
      runLimitMs: config.upstreamDeadlineMs + 300_000,
      masterKey,
      now,
      audit,
      redactor,
      sender: new CallbackSender({
        client,
        secret: callbackSecret,
        now,
        onFailure: (approvalId, reason) => logger.warn({ approvalId, reason }, "approval notification or callback could not be delivered"),
      }),
      ...(config.approvals.webhookUrl === undefined ? {} : { webhook: { url: config.approvals.webhookUrl, format: config.approvals.webhookFormat } }),
      ...(config.approvals.consoleUrl === undefined ? {} : { consoleUrl: config.approvals.consoleUrl }),
      events: metrics.approvalEvents(),
      onError: (err, what) => logger.warn({ err, what }, "approvals: a step failed"),
    });
    const road = createProxyRoad({
      ...(tracing === undefined ? {} : { tracer: tracing.tracer }),
      catalog: toolbox.catalog,
      identity,
      vault,
      audit,
      redactor,
      authorizer,
      resilience,
      approvals,
      now,
      events: metrics.roadEvents(),
      onRefundError: (err) => logger.warn({ err }, "quota refund failed; the units stay counted until the window ends"),
    });
    approvals.start(config.approvals.sweepMs);
    onStop("approval sweeper", () => approvals.stop());

    let jobs: JobService | undefined;
    if (config.features.async) {
      jobs = new JobService({
        store: new JobStore(store.driver),
        road,
        masterKey,
        now,
        instanceId,
        concurrency: config.jobConcurrency,
        leaseMs: config.jobLeaseMs,
        callbacks: new CallbackSender({
          client,
          secret: callbackSecret,
          now,
          onFailure: (jobId, reason) => logger.warn({ jobId, reason }, "job callback could not be delivered"),
        }),
        onError: (err, jobId) => logger.error({ err, jobId }, "job worker error"),
      });
      jobs.start();
      const worker = jobs;
      onStop("job worker", () => worker.stop());
    }

    const clusterSync = new ClusterSync({
      bus,
      changes,
      store,
      identity,
      reload: {
        credentials: () => vault.load(),
        tools: async () => {
          await Promise.all([toolbox.reload(), mcpUpstreams.reload()]);
        },
        policies: () => policies.reload(),
        signingKeys: () => keyring.refresh(),
      },
      now,
      reconcileMs: config.clusterReconcileMs,
      onError: (err, what) => logger.warn({ err, what }, "cluster sync step failed; the next reconcile retries"),
    });
    clusterSync.start();
    onStop("cluster sync", () => clusterSync.stop());

    let closingStarted = false;
    const operators = new OperatorService({ driver: store.driver, bootstrapAdminKey: admin.value, now, session: config.consoleSession });
    // Bound below, once the app exists; main's route-auth hook asks it who an operator is.
    // eslint-disable-next-line prefer-const -- a `const` would throw instead of answering "not installed" if read early
    let operatorAuth: ReturnType<typeof installOperatorAuth> | undefined;
    const app = createHttpServer({
      isClosing: () => closingStarted,
      logger,
      bodyLimitBytes: config.bodyLimitBytes,
      trustProxy: config.trustProxy,
      requestTimeoutMs: config.requestTimeoutMs,
      auth: {
        identifyOperator: async (request) => {
          if (operatorAuth === undefined) throw new Error("operator authentication is not installed");
          const found = await operatorAuth.whoIs(request);
          const operator = found.operator;
          if (operator === undefined) return found;
          // A change made with a console session carries its CSRF token, as on every role route.
          if (operator.session !== undefined && !["GET", "HEAD", "OPTIONS"].includes(request.method)) {
            const sent = request.headers[CSRF_HEADER];
            if (typeof sent !== "string" || !sameSecret(sent, operator.session.csrfToken)) {
              return { refusal: new GatewayError("csrf_invalid", `a change made with a console session must send the session's CSRF token in ${CSRF_HEADER}`) };
            }
          }
          // Set so the operator's changes are audited with its name and approvals record who decided.
          request.operator = operator;
          request.logFields.operator = operator.name;
          return found;
        },
        verifyAgentToken: (raw) => identity.verifyAccessToken(raw),
      },
      preAuthLimiter: new PreAuthLimiter({ counters: limitCounters, now, rates: config.preAuthRates }),
    });
    // Before any route is registered: it records every route with the role it declares (the
    // route x role and change-event tests walk that list).
    operatorAuth = installOperatorAuth(app, { operators, audit });
    onStop("http server", async () => {
      // Stop taking requests and let in-flight ones finish, bounded by the grace period.
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([app.close(), grace]);
      app.server.closeAllConnections?.();
    });
    registerHealthRoutes(app, {
      checks: [
        { name: "store", check: () => store.ping() },
        {
          name: "audit",
          check: async () => {
            if (!audit.isHealthy) throw new Error(`the audit trail cannot be written (AUDIT_FAILURE_MODE=${config.auditFailureMode})`);
          },
        },
        ...(bus.kind === "redis"
          ? [
              {
                name: "redis",
                check: async () => {
                  if (bus.status() !== "up") throw new Error("unreachable; serving with per-instance state until it returns");
                },
              },
            ]
          : []),
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
    registerAgentRoutes(app, { identity });
    registerTokenRoutes(app, { identity, keyring });
    registerCredentialRoutes(app, { vault });
    registerAuditRoutes(app, { store, audit, verify: () => verifyAuditTrail(store, auditKeys.chain) });
    registerOperatorRoutes(app, { operators });
    registerConsoleApiRoutes(app, { operators, audit, metrics, now, whoIs: operatorAuth.whoIs });
    registerConsoleAssets(app, { dir: deps.consoleDir ?? defaultConsoleDir() });
    const catalog = toolbox.catalog;
    registerOAuthRoutes(app, { identity, publicUrl: config.publicUrl, now, scopes: () => catalog.list().map((a) => `${a.tool}:${a.action}`) });
    registerProxyRoutes(app, { handle: road.handle, policyEnforced: config.features.policy, judgeCallback: (host) => client.resolveJudged(host) });
    registerMcpRoutes(app, {
      identity,
      publicUrl: config.publicUrl,
      view: new McpToolView(toolbox.catalog),
      // With FF_POLICY off nothing is enforced, so nothing is hidden either.
      visible: config.features.policy ? (token, tool, action) => visibleTo(token, policies.applicable(token.agentId, token.role), tool, action) : () => true,
      // Everything visibleTo reads: the policies (by generation), whose they are, and the token's scopes and intent.
      listingKey: config.features.policy
        ? (token) => JSON.stringify([policies.generation, token.agentId, token.role, token.intent ?? null, token.scopes])
        : () => "all",
      handle: road.handle,
      serverVersion: packageVersion(),
    });
    registerToolRoutes(app, { toolbox, policies: config.features.policy ? policies : undefined, now });
    registerMcpServerRoutes(app, { upstreams: mcpUpstreams });
    registerOpenAICompatRoutes(app, { handle: answeredOnly(road.handle), mayChat: chatPermission({ policies, enforced: config.features.policy, now }) });
    registerChaosRoutes(app, { chaos });
    let metricsApp: FastifyInstance | undefined;
    if (config.metricsPort === undefined) registerMetricsRoute(app, { metrics, token: config.metricsToken });
    else {
      const separate = Fastify({ logger: false });
      metricsApp = separate;
      registerMetricsRoute(separate, { metrics, token: config.metricsToken });
      onStop("metrics listener", () => separate.close());
    }
    registerPolicyRoutes(app, { policies, identity, counters: limitCounters, now, countFailedCalls: config.policyCountFailedCalls });
    const judge = toolbox.directClient;
    registerJobRoutes(app, { jobs, judgeCallback: (host) => judge.resolveJudged(host) });
    registerApprovalRoutes(app, { approvals });
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
      approvals,
      instanceId,
      cluster: { bus, sync: clusterSync },
      adminKey: admin,
      operators,
      routes: operatorAuth.routes,
      async listen() {
        await app.listen({ port: config.port, host: config.host });
        if (metricsApp !== undefined) await metricsApp.listen({ port: config.metricsPort!, host: config.host });
        const address = app.server.address() as AddressInfo;
        const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
        return `http://${host}:${address.port}`;
      },
      road,
      changes,
      close() {
        closing ??= (async () => {
          closingStarted = true;
          await stopAll();
        })();
        return closing;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Where Idempotency-Keys are claimed (IDEMPOTENCY_STORE): by default Redis when instances share
 * one, else the SQL store when it is PostgreSQL (shared by every instance), else this process.
 */
function sharedIdempotencyKeys(config: Readonly<Config>, store: SqlStore, logger: Logger): IdempotencyKeys<Execution> {
  // An unfinished claim must outlive any call: the whole-call deadline plus a margin.
  const times = { ttlMs: config.idempotency.ttlSeconds * 1000, inFlightTtlMs: config.upstreamDeadlineMs + 30_000 };
  const choice =
    config.idempotency.store === "auto" ? (config.redisUrl !== undefined ? "redis" : store.kind === "postgres" ? "sql" : "memory") : config.idempotency.store;
  if (choice === "redis") {
    return new FailoverIdempotencyKeys(
      new RedisIdempotencyKeys(config.redisUrl!, { ...times, prefix: config.redisPrefix }),
      new MemoryIdempotencyKeys({ ...times, maxKeys: config.idempotency.maxKeys }),
      config.redisFailureMode,
      (degraded, err) =>
        degraded
          ? logger.error(
              { err, mode: config.redisFailureMode },
              `Redis unreachable for idempotency keys: ${config.redisFailureMode === "open" ? "using per-instance keys (a repeat through another instance may run again)" : "refusing calls that carry an Idempotency-Key"}`,
            )
          : logger.warn("Redis is back: idempotency keys are shared again"),
    );
  }
  if (choice === "sql") return new SqlIdempotencyKeys(store.driver, times);
  return new MemoryIdempotencyKeys({ ...times, maxKeys: config.idempotency.maxKeys });
}

/** The quota and rate-limit counters: shared through Redis (with failover) when REDIS_URL is set, else in-process. */
async function openCounters(config: Readonly<Config>, logger: Logger): Promise<Counters> {
  if (config.redisUrl === undefined) return new MemoryCounters();
  const redisCounters = new RedisCounters(config.redisUrl, `${config.redisPrefix}limits:`);
  await redisCounters.ready();
  return new FailoverCounters(redisCounters, new MemoryCounters(), config.redisFailureMode, (degraded, err) =>
    degraded
      ? logger.error(
          { err, mode: config.redisFailureMode },
          `Redis unreachable for limits: ${config.redisFailureMode === "open" ? "falling back to per-instance counters" : "refusing limited calls"}`,
        )
      : logger.warn("Redis is back: limits are shared again"),
  );
}

/** For a door that never holds calls (the authorize stage refuses them there): its answers only. */
function answeredOnly(handle: ProxyRoad["handle"]): (input: Parameters<ProxyRoad["handle"]>[0]) => Promise<ProxyOutput> {
  return async (input) => {
    const out = await handle(input);
    if ("held" in out) throw new GatewayError("internal_error", `the ${input.door ?? "rest"} door cannot hold a call for approval`);
    return out;
  };
}
