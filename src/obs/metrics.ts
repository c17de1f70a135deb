import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay, type PerformanceEntry } from "node:perf_hooks";
import client from "prom-client";
import type { AuditEvents } from "../audit/index.js";
import type { ApprovalEvents } from "../approvals/index.js";
import type { IdentityEvents, TokenCheckResult } from "../identity/index.js";
import type { PolicyEvents } from "../policy/authorizer.js";
import type { RoadEvents } from "../proxy/stages.js";
import { DOORS } from "../proxy/call.js";
import type { ResilienceEvents } from "../resilience/executor.js";
import type { BreakerState } from "../resilience/breaker.js";

/**
 * Every label value comes from a closed set: anything else is reported as `other`, so no agent
 * id, URL or user text can ever become a label (and cardinality stays bounded whatever callers send).
 */
export const LABELS = {
  tool: ["serpapi", "http_fetch", "openai", "gmail_send", "generic", "other"],
  action: ["search", "get", "head", "chat", "send", "other"],
  status: ["2xx", "3xx", "4xx", "5xx"],
  door: DOORS,
  reason: ["scope_denied", "intent_required", "guard_failed", "quota_exceeded", "off_hours", "rate_limited", "agent_suspended", "approval_required", "other"],
  decision: ["allow", "deny"],
  tokenResult: ["valid", "missing", "invalid", "expired", "not_yet_valid", "revoked", "provenance_mismatch", "suspended", "too_large"],
  retryOutcome: ["success", "failure", "budget_exhausted"],
  breakerState: ["closed", "half_open", "open"],
  cacheResult: ["hit", "miss", "bypass", "stale"],
  fault: ["timeout", "error500", "reset", "latency"],
  unauthenticatedCode: ["token_missing", "token_invalid", "token_too_large", "other"],
  llmTokenKind: ["input", "output"],
  auditUnrecorded: ["served", "refused"],
  gcKind: ["minor", "major", "incremental", "weakcb", "other"],
  approvalDecision: ["requested", "approved", "denied", "expired", "executed", "failed"],
  approvalWait: ["approved", "denied", "expired"],
} as const;

const BUILTIN_TOOLS = new Set<string>(["serpapi", "http_fetch", "openai", "gmail_send"]);
const clamp = <T extends readonly string[]>(value: string, allowed: T): T[number] => ((allowed as readonly string[]).includes(value) ? value : "other");
/** Tools defined at run time (generic tools) share the `generic` label. */
export const toolLabel = (tool: string, knownGeneric: (t: string) => boolean = () => false): string =>
  BUILTIN_TOOLS.has(tool) ? tool : knownGeneric(tool) ? "generic" : "other";
/**
 * prom-client's `labels()` hashes its arguments on every call; the hot path's label sets (bounded:
 * every value is clamped to a closed set) stay bound once made.
 */
function boundChildren<C>(metric: { labels(...values: string[]): C }): (...values: string[]) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join("\u0000");
    let child = children.get(key);
    if (child === undefined) {
      child = metric.labels(...values);
      children.set(key, child);
    }
    return child;
  };
}

const statusClass = (status: number) => `${Math.min(5, Math.max(2, Math.floor(status / 100)))}xx`;
const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

const LAG_RESOLUTION_MS = 10;
/** monitorEventLoopDelay reports the timer interval itself; the lag is what exceeds it. */
const lagSeconds = (loop: ReturnType<typeof monitorEventLoopDelay>, p: number) =>
  loop.count > 0 ? Math.max(0, loop.percentile(p) / 1e6 - LAG_RESOLUTION_MS) / 1000 : 0;

/** Buckets fine enough below 10 ms (the gateway's own overhead lives there), up to a minute. */
const MS_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 35, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export interface GaugeSources {
  cache?: () => { entries: number; bytes: number };
  breakers?: () => Record<string, BreakerState>;
  chaosActive?: () => boolean;
  auditBuffered?: () => number;
  auditHealthy?: () => boolean;
  dbPool?: () => { inUse: number; size: number };
  redisDegraded?: () => boolean;
  isGenericTool?: (tool: string) => boolean;
}

/** The histogram child of a GC entry's kind, each bound once. */
function gcKindLabels(histogram: client.Histogram<"gc">): (entry: PerformanceEntry) => client.Histogram.Internal<"gc"> {
  const byKind = new Map<number, client.Histogram.Internal<"gc">>([
    [perfConstants.NODE_PERFORMANCE_GC_MINOR, histogram.labels("minor")],
    [perfConstants.NODE_PERFORMANCE_GC_MAJOR, histogram.labels("major")],
    [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, histogram.labels("incremental")],
    [perfConstants.NODE_PERFORMANCE_GC_WEAKCB, histogram.labels("weakcb")],
  ]);
  const other = histogram.labels("other");
  return (entry) => byKind.get((entry as { detail?: { kind?: number } }).detail?.kind ?? -1) ?? other;
}

/** The gateway's Prometheus metrics, on a registry of its own (tests run many gateways in one process). */
export class GatewayMetrics {
  readonly registry = new client.Registry();
  private readonly eventLoop = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  private readonly gcObserver: PerformanceObserver;
  private readonly isGeneric: (tool: string) => boolean;
  /** What the gauges read at scrape time; handed over by `observe` once the parts exist. */
  private sources: GaugeSources;

  readonly requests = new client.Counter({
    name: "gateway_requests_total",
    help: "Tool calls through the road, by door, tool, action and status class.",
    labelNames: ["tool", "action", "status", "door"],
    registers: [this.registry],
  });
  readonly requestDuration = new client.Histogram({
    name: "gateway_request_duration_ms",
    help: "End-to-end time of a tool call inside the gateway, in milliseconds.",
    labelNames: ["tool"],
    buckets: MS_BUCKETS,
    registers: [this.registry],
  });
  readonly overhead = new client.Histogram({
    name: "gateway_overhead_ms",
    help: "Gateway time minus upstream time of a tool call, in milliseconds.",
    labelNames: ["tool"],
    buckets: MS_BUCKETS,
    registers: [this.registry],
  });
  readonly upstreamDuration = new client.Histogram({
    name: "gateway_upstream_duration_ms",
    help: "Duration of one upstream attempt, in milliseconds.",
    labelNames: ["tool"],
    buckets: MS_BUCKETS,
    registers: [this.registry],
  });
  readonly unauthenticatedCalls = new client.Counter({
    name: "gateway_unauthenticated_calls_total",
    help: "Tool calls refused because the caller proved nothing (no token, or not one of this gateway's), by door and code; not audited one by one.",
    labelNames: ["door", "code"],
    registers: [this.registry],
  });
  readonly agentCreations = new client.Counter({ name: "gateway_agent_creations_total", help: "Agents registered.", registers: [this.registry] });
  readonly tokenGenerations = new client.Counter({ name: "gateway_token_generations_total", help: "Access tokens issued.", registers: [this.registry] });
  readonly tokenValidations = new client.Counter({
    name: "gateway_token_validations_total",
    help: "Access token checks, by result.",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly tokenExpirations = new client.Counter({
    name: "gateway_token_expirations_total",
    help: "Requests refused because their token had expired.",
    registers: [this.registry],
  });
  readonly tokenRevocations = new client.Counter({ name: "gateway_token_revocations_total", help: "Tokens revoked.", registers: [this.registry] });
  readonly provenanceMismatches = new client.Counter({
    name: "gateway_provenance_mismatches_total",
    help: "Tokens whose signature verified but whose payload does not match what was issued (forgery with the signing key).",
    registers: [this.registry],
  });
  readonly policyEvaluations = new client.Counter({
    name: "gateway_policy_evaluations_total",
    help: "Policy decisions, by decision.",
    labelNames: ["decision"],
    registers: [this.registry],
  });
  readonly policyDenials = new client.Counter({
    name: "gateway_policy_denials_total",
    help: "Policy denials, by reason, tool and action.",
    labelNames: ["reason", "tool", "action"],
    registers: [this.registry],
  });
  readonly llmTokens = new client.Counter({
    name: "gateway_llm_tokens_total",
    help: "Model tokens used by answered calls, from the upstream's usage (input = prompt, output = completion).",
    labelNames: ["tool", "kind"],
    registers: [this.registry],
  });
  readonly quotaExceeded = new client.Counter({
    name: "gateway_quota_exceeded_total",
    help: "Calls refused because a quota was used up.",
    registers: [this.registry],
  });
  readonly rateLimited = new client.Counter({ name: "gateway_rate_limited_total", help: "Calls refused by a rate limit.", registers: [this.registry] });
  readonly retries = new client.Counter({
    name: "gateway_retries_total",
    help: "Upstream retries, by tool and outcome.",
    labelNames: ["tool", "outcome"],
    registers: [this.registry],
  });
  readonly breakerTransitions = new client.Counter({
    name: "gateway_breaker_transitions_total",
    help: "Circuit breaker state changes.",
    labelNames: ["tool", "from", "to"],
    registers: [this.registry],
  });
  readonly breakerFastFails = new client.Counter({
    name: "gateway_breaker_fast_fail_total",
    help: "Calls refused at once because the tool's breaker was open.",
    labelNames: ["tool"],
    registers: [this.registry],
  });
  readonly cacheRequests = new client.Counter({
    name: "gateway_cache_requests_total",
    help: "Response cache lookups, by tool and result.",
    labelNames: ["tool", "result"],
    registers: [this.registry],
  });
  readonly chaosInjected = new client.Counter({
    name: "gateway_chaos_injected_total",
    help: "Faults injected by chaos testing (counted apart from real ones).",
    labelNames: ["tool", "fault"],
    registers: [this.registry],
  });
  readonly idempotentReplays = new client.Counter({
    name: "gateway_idempotent_replays_total",
    help: "Calls answered from an earlier call with the same Idempotency-Key.",
    registers: [this.registry],
  });
  readonly auditWriteFailures = new client.Counter({
    name: "gateway_audit_write_failures_total",
    help: "Audit group commits that failed (the records are kept and retried).",
    registers: [this.registry],
  });
  readonly auditUnrecorded = new client.Counter({
    name: "gateway_audit_unrecorded_total",
    help: "Calls answered without a durable audit record: served (AUDIT_FAILURE_MODE=open) or refused with 503 (closed).",
    labelNames: ["answer"],
    registers: [this.registry],
  });
  readonly auditDropped = new client.Counter({
    name: "gateway_audit_dropped_total",
    help: "Audit records dropped because the retry buffer was full (AUDIT_MAX_BUFFERED) or the store stayed unreachable at shutdown.",
    registers: [this.registry],
  });
  readonly auditCommitDuration = new client.Histogram({
    name: "gateway_audit_commit_duration_seconds",
    help: "Duration of one durable audit group commit (insert and fsync), in seconds.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly auditCommitRecords = new client.Histogram({
    name: "gateway_audit_commit_records",
    help: "Records written by one audit group commit.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1000],
    registers: [this.registry],
  });
  readonly approvals = new client.Counter({
    name: "gateway_approvals_total",
    help: "Calls held for a person's approval, by tool and what became of them (requested, approved, denied, expired, executed, failed).",
    labelNames: ["tool", "decision"],
    registers: [this.registry],
  });
  readonly approvalsPending = new client.Gauge({
    name: "gateway_approvals_pending",
    help: "Approvals waiting for a decision, in the store every instance shares (each instance reports the same count: aggregate with max).",
    registers: [this.registry],
  });
  readonly approvalWait = new client.Histogram({
    name: "gateway_approval_wait_seconds",
    help: "Time from a call being held to a person's decision (or its expiry), in seconds.",
    labelNames: ["decision"],
    buckets: [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400, 7 * 86_400],
    registers: [this.registry],
  });

  /** The label children every call touches, bound once. */
  private readonly hot = {
    requests: boundChildren(this.requests),
    requestDuration: boundChildren(this.requestDuration),
    overhead: boundChildren(this.overhead),
    tokenValidations: boundChildren(this.tokenValidations),
    policyEvaluations: boundChildren(this.policyEvaluations),
    cacheRequests: boundChildren(this.cacheRequests),
    upstreamDuration: boundChildren(this.upstreamDuration),
  };

  constructor(sources: GaugeSources = {}) {
    this.sources = sources;
    this.isGeneric = (tool) => this.sources.isGenericTool?.(tool) ?? false;
    const current = (): GaugeSources => this.sources;
    // Process metrics written out rather than prom-client's defaults, whose names promtool's linter rejects.
    this.eventLoop.enable();
    const loop = this.eventLoop;
    const registers = [this.registry];
    // Garbage-collection pauses by kind: what stops the event loop besides the gateway's own work (the tail's usual cause).
    const gcPauses = new client.Histogram({
      name: "gateway_nodejs_gc_pause_seconds",
      help: "Garbage-collection pauses of the main thread, by kind (minor: young generation; major: mark-compact; incremental: marking steps; weakcb: weak callbacks), in seconds.",
      labelNames: ["gc"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25],
      registers,
    });
    const gcKind = gcKindLabels(gcPauses);
    this.gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcKind(entry).observe(entry.duration / 1000);
    });
    this.gcObserver.observe({ entryTypes: ["gc"] });
    new client.Counter({
      name: "gateway_process_cpu_seconds_total",
      help: "User and system CPU time of the gateway process, in seconds.",
      registers,
      collect() {
        const { user, system } = process.cpuUsage();
        const total = (user + system) / 1e6;
        const current = (this as unknown as { hashMap: Record<string, { value: number }> }).hashMap[""]?.value ?? 0;
        if (total > current) this.inc(total - current);
      },
    });
    new client.Gauge({
      name: "gateway_process_resident_memory_bytes",
      help: "Resident set size of the gateway process, in bytes.",
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new client.Gauge({
      name: "gateway_nodejs_heap_used_bytes",
      help: "V8 heap in use, in bytes.",
      registers,
      collect() {
        this.set(process.memoryUsage().heapUsed);
      },
    });
    new client.Gauge({
      name: "gateway_nodejs_heap_total_bytes",
      help: "V8 heap reserved, in bytes.",
      registers,
      collect() {
        this.set(process.memoryUsage().heapTotal);
      },
    });
    new client.Gauge({
      name: "gateway_nodejs_active_handles",
      help: "Open handles and requests keeping the event loop alive (sockets, timers, files).",
      registers,
      collect() {
        this.set(process.getActiveResourcesInfo().length);
      },
    });
    new client.Gauge({
      name: "gateway_nodejs_eventloop_lag_p50_seconds",
      help: "Event-loop delay, median since the previous scrape, in seconds.",
      registers,
      collect() {
        this.set(lagSeconds(loop, 50));
      },
    });
    new client.Gauge({
      name: "gateway_nodejs_eventloop_lag_p99_seconds",
      help: "Event-loop delay, 99th percentile since the previous scrape, in seconds.",
      registers,
      collect() {
        this.set(lagSeconds(loop, 99));
        loop.reset();
      },
    });
    new client.Gauge({
      name: "gateway_cache_entries",
      help: "Entries in the response cache.",
      registers,
      collect() {
        this.set(current().cache?.().entries ?? 0);
      },
    });
    new client.Gauge({
      name: "gateway_cache_bytes",
      help: "Bytes held by the response cache.",
      registers,
      collect() {
        this.set(current().cache?.().bytes ?? 0);
      },
    });
    new client.Gauge({
      name: "gateway_chaos_active",
      help: "1 while chaos fault injection is on.",
      registers,
      collect() {
        this.set(current().chaosActive?.() ? 1 : 0);
      },
    });
    new client.Gauge({
      name: "gateway_audit_buffered",
      help: "Audit records waiting to be written.",
      registers,
      collect() {
        this.set(current().auditBuffered?.() ?? 0);
      },
    });
    new client.Gauge({
      name: "gateway_audit_healthy",
      help: "1 while the audit trail is being written; 0 after a failed write until a retry succeeds.",
      registers,
      collect() {
        this.set(current().auditHealthy?.() === false ? 0 : 1);
      },
    });
    new client.Gauge({
      name: "gateway_db_pool_in_use",
      help: "Database connections in use.",
      registers,
      collect() {
        this.set(current().dbPool?.().inUse ?? 0);
      },
    });
    new client.Gauge({
      name: "gateway_db_pool_size",
      help: "Database connection pool size.",
      registers,
      collect() {
        this.set(current().dbPool?.().size ?? 0);
      },
    });
    new client.Gauge({
      name: "gateway_redis_degraded",
      help: "1 while Redis is unreachable and limits run per instance.",
      registers,
      collect() {
        this.set(current().redisDegraded?.() ? 1 : 0);
      },
    });
    const breakerGauge = new client.Gauge({
      name: "gateway_breaker_state",
      help: "Circuit breaker state per tool: 0 closed, 1 half-open, 2 open.",
      labelNames: ["tool"],
      registers,
      collect() {
        const states = current().breakers?.() ?? {};
        // Generic tools share a label: report the worst state among them.
        const worst = new Map<string, number>();
        for (const [tool, state] of Object.entries(states)) {
          const label = toolLabel(tool, current().isGenericTool);
          worst.set(label, Math.max(worst.get(label) ?? 0, BREAKER_VALUE[state]));
        }
        for (const t of LABELS.tool) breakerGauge.set({ tool: t }, worst.get(t) ?? 0);
      },
    });
    this.initialiseZeroes();
  }

  /** Every known label combination starts at 0, so dashboards and alerts see series before the first event. */
  private initialiseZeroes(): void {
    for (const tool of LABELS.tool) {
      for (const door of LABELS.door)
        for (const action of LABELS.action) for (const status of LABELS.status) this.requests.labels(tool, action, status, door).inc(0);
      for (const reason of LABELS.reason) for (const action of LABELS.action) this.policyDenials.labels(reason, tool, action).inc(0);
      for (const outcome of LABELS.retryOutcome) this.retries.labels(tool, outcome).inc(0);
      for (const from of LABELS.breakerState) for (const to of LABELS.breakerState) if (from !== to) this.breakerTransitions.labels(tool, from, to).inc(0);
      this.breakerFastFails.labels(tool).inc(0);
      for (const result of LABELS.cacheResult) this.cacheRequests.labels(tool, result).inc(0);
      for (const fault of LABELS.fault) this.chaosInjected.labels(tool, fault).inc(0);
      for (const kind of LABELS.llmTokenKind) this.llmTokens.labels(tool, kind).inc(0);
      this.requestDuration.zero({ tool });
      this.overhead.zero({ tool });
      this.upstreamDuration.zero({ tool });
      for (const decision of LABELS.approvalDecision) this.approvals.labels(tool, decision).inc(0);
    }
    for (const decision of LABELS.approvalWait) this.approvalWait.zero({ decision });
    for (const result of LABELS.tokenResult) this.tokenValidations.labels(result).inc(0);
    for (const door of LABELS.door) for (const code of LABELS.unauthenticatedCode) this.unauthenticatedCalls.labels(door, code).inc(0);
    for (const outcome of LABELS.auditUnrecorded) this.auditUnrecorded.labels(outcome).inc(0);
    for (const decision of LABELS.decision) this.policyEvaluations.labels(decision).inc(0);
  }

  /** Points the gauges at the gateway's parts, once the composition root has built them. */
  observe(sources: GaugeSources): void {
    this.sources = sources;
  }

  private tool(t: string): string {
    return toolLabel(t, this.isGeneric);
  }

  roadEvents(): RoadEvents {
    return {
      callFinished: (e) => {
        const tool = this.tool(e.tool);
        this.hot.requests(tool, clamp(e.action, LABELS.action), statusClass(e.status), clamp(e.door, LABELS.door)).inc();
        this.hot.requestDuration(tool).observe(e.durationMs);
        if (e.status < 400) this.hot.overhead(tool).observe(Math.max(0, e.durationMs - e.upstreamMs));
        if (e.usage !== undefined) {
          this.llmTokens.labels(tool, "input").inc(e.usage.input);
          this.llmTokens.labels(tool, "output").inc(e.usage.output);
        }
      },
      unauthenticated: (e) => this.unauthenticatedCalls.labels(clamp(e.door, LABELS.door), clamp(e.code, LABELS.unauthenticatedCode)).inc(),
    };
  }

  identityEvents(): IdentityEvents {
    return {
      agentCreated: () => this.agentCreations.inc(),
      tokenIssued: () => this.tokenGenerations.inc(),
      tokenChecked: (result: TokenCheckResult) => {
        this.hot.tokenValidations(clamp(result, LABELS.tokenResult)).inc();
        if (result === "expired") this.tokenExpirations.inc();
        if (result === "provenance_mismatch") this.provenanceMismatches.inc();
      },
      tokensRevoked: (ids) => this.tokenRevocations.inc(ids.length),
    };
  }

  policyEvents(): PolicyEvents {
    return {
      decision: (d) => this.hot.policyEvaluations(d).inc(),
      denied: (e) => {
        this.policyDenials.labels(clamp(e.reason, LABELS.reason), this.tool(e.tool), clamp(e.action, LABELS.action)).inc();
        if (e.reason === "quota_exceeded") this.quotaExceeded.inc();
        if (e.reason === "rate_limited") this.rateLimited.inc();
      },
    };
  }

  approvalEvents(): ApprovalEvents {
    return {
      counted: (tool, decision) => this.approvals.labels(this.tool(tool), clamp(decision, LABELS.approvalDecision)).inc(),
      waited: (decision, seconds) => this.approvalWait.labels(clamp(decision, LABELS.approvalWait)).observe(Math.max(0, seconds)),
      pending: (count) => this.approvalsPending.set(count),
    };
  }

  auditEvents(): AuditEvents {
    return {
      committed: (records, durationMs) => {
        this.auditCommitDuration.observe(durationMs / 1000);
        this.auditCommitRecords.observe(records);
      },
      writeFailed: () => this.auditWriteFailures.inc(),
      unrecorded: (outcome) => this.auditUnrecorded.labels(outcome).inc(),
      dropped: (count) => this.auditDropped.inc(count),
      lostAtClose: (count) => this.auditDropped.inc(count),
    };
  }

  resilienceEvents(): ResilienceEvents {
    return {
      retry: (tool, outcome) => this.retries.labels(this.tool(tool), clamp(outcome, LABELS.retryOutcome)).inc(),
      breakerTransition: (tool, from, to) => this.breakerTransitions.labels(this.tool(tool), from, to).inc(),
      breakerFastFail: (tool) => this.breakerFastFails.labels(this.tool(tool)).inc(),
      cache: (tool, result) => this.hot.cacheRequests(this.tool(tool), clamp(result, LABELS.cacheResult)).inc(),
      chaosInjected: (tool, fault) => this.chaosInjected.labels(this.tool(tool), clamp(fault, LABELS.fault)).inc(),
      idempotentReplay: () => this.idempotentReplays.inc(),
      upstreamAttempt: (tool, durationMs) => this.hot.upstreamDuration(this.tool(tool)).observe(durationMs),
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text, as `registry.metrics()` writes it, family by family with a turn of the
   * event loop whenever a millisecond has gone by: the whole page (~140 KB, every series from start)
   * takes 4–9 ms to render, a stall every call in flight would wait out on each scrape.
   */
  async text(): Promise<string> {
    const parts: string[] = [];
    let slice = performance.now();
    for (const metric of this.registry.getMetricsAsArray()) {
      parts.push(await this.registry.getSingleMetricAsString(metric.name));
      if (performance.now() - slice >= 1) {
        await new Promise((resolve) => setImmediate(resolve));
        slice = performance.now();
      }
    }
    return `${parts.join("\n\n")}\n`;
  }

  close(): void {
    this.eventLoop.disable();
    this.gcObserver.disconnect();
  }
}
