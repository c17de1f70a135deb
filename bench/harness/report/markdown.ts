import type { RunData, Results } from "./compute.js";
import { GENERATOR_LAG_TRUST_MS, TOOLS } from "./compute.js";

const mark = (met: boolean | undefined) => (met === undefined ? "➖ (not judged in this scenario)" : met ? "✅" : "❌");
const ms = (v: number | undefined, digits = 2) => (v === undefined ? "n/a" : v.toFixed(digits));
const pct = (v: number | undefined, digits = 1) => (v === undefined ? "n/a" : `${(v * 100).toFixed(digits)}%`);
const human = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(2)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);

/** What each scenario proves, and whether this run was it. */
const SCENARIO_SECTIONS = [
  { key: "baseline", title: "1. Baseline Ramp Test", duration: "10 minutes", load: "0 → 50 RPS" },
  { key: "spike", title: "2. Spike Test", duration: "2.5 minutes", load: "0 → 150 RPS spike" },
  { key: "soak", title: "3. Soak Test", duration: "2 hours", load: "15 RPS sustained" },
  { key: "chaos", title: "4. Chaos Engineering", duration: "6 minutes", load: "20 RPS with injected failures" },
  { key: "cache", title: "5. Cache Effectiveness", duration: "5 minutes", load: "Repeated queries" },
  { key: "big", title: "6. Production Profile (big)", duration: "40 minutes", load: "0 → 60 → 120 spike → 60 → 80 wave → 0 RPS" },
  { key: "capacity", title: "7. Capacity Search", duration: "30 s per step", load: "50 RPS × 1.5 per step until a target breaks" },
];

/** Recommendations derived from what missed (and from where the margins are thin), never boilerplate. */
export function recommendations(r: Results, d: RunData): { performance: string[]; reliability: string[]; security: string[] } {
  const t = d.targets;
  const performance: string[] = [];
  const reliability: string[] = [];
  const security: string[] = [];
  if (r.overhead.p99 > t.clientOverheadP99Ms)
    performance.push(
      `Client-observed overhead p99 is ${ms(r.overhead.p99)} ms against ${t.clientOverheadP99Ms} ms (the gateway's own Server-Timing says ${ms(r.selfReportedOverhead.p99)} ms, so ${ms(Math.max(0, r.overhead.p99 - r.selfReportedOverhead.p99))} ms is spent outside its timed section: queueing, parsing, serialization, event-loop stalls): profile the request path under this load (\`node --cpu-prof\`) and check event-loop lag (${ms(r.resources.lagP95Ms)} ms p95) and CPU (${r.resources.cpuPeakPct.toFixed(0)}% peak of one core).`,
    );
  if (r.comparison && r.comparison.ratioP99 > t.bareRatioP99)
    performance.push(
      `End-to-end p99 is ×${r.comparison.ratioP99.toFixed(2)} the bare proxy's (${ms(r.comparison.gateway.p99)} vs ${ms(r.comparison.bare.p99)} ms) against ×${t.bareRatioP99}: \`npm run bench:proxy\` isolates the gateway's cost per stage at saturation.`,
    );
  if (r.resources.cpuPeakPct > 80)
    performance.push(
      `The gateway process peaked at ${r.resources.cpuPeakPct.toFixed(0)}% of a core: at this rate add an instance (see Capacity Planning) rather than pushing one process further.`,
    );
  if (r.checks.find((c) => c.name === "Cache hit ratio")?.met === false)
    performance.push(
      `Cache hit ratio ${pct(r.cache.ratio)} is at or below ${pct(t.cacheHitRatio, 0)}: raise CACHE_DEFAULT_TTL_SECONDS or the per-action TTL for the tools whose answers repeat.`,
    );
  if (!r.generator.trustworthy)
    performance.push(
      `The load generator sent requests up to ${ms(r.generator.lagP99Ms)} ms late (p99): run the generator on another machine before trusting the tail latencies.`,
    );
  if (r.successRate < t.successRate)
    reliability.push(
      `Success rate ${pct(r.successRate, 2)} is under ${pct(t.successRate)}. Failures by code: ${Object.entries(r.totals.failuresByCode)
        .map(([c, n]) => `${c} ${n}`)
        .join(", ")}. Fix the largest class first.`,
    );
  if (r.checks.find((c) => c.name === "Retry success")?.met === false)
    reliability.push(
      `Only ${pct(r.retries.rate)} of retried calls succeeded: raise RETRY_MAX_ATTEMPTS or RETRY_BUDGET_PERCENT (the budget refused ${r.retries.budgetExhausted} retries).`,
    );
  if (r.fastFail.count > 0 && r.fastFail.p99 > t.fastFailP99Ms)
    reliability.push(
      `Breaker fast-fail p99 ${ms(r.fastFail.p99)} ms is too slow: requests are queueing before the breaker check; look at event-loop lag and connection limits.`,
    );
  const slowRecovery = Object.entries(r.breakers).filter(([, b]) => (b.recoveryMs !== undefined && b.recoveryMs > t.breakerCloseS * 1000) || !b.closedAtEnd);
  if (slowRecovery.length > 0)
    reliability.push(
      `Breakers for ${slowRecovery.map(([tool]) => tool).join(", ")} did not close within ${t.breakerCloseS} s after the faults stopped: lower BREAKER_COOLDOWN_MS or allow more half-open probes.`,
    );
  const neverOpened = r.checks.filter((c) => c.name.startsWith("Breaker ") && c.name.endsWith(" opened under faults") && c.met === false);
  if (neverOpened.length > 0)
    reliability.push(
      `${neverOpened.map((c) => c.name.replace(" opened under faults", "").replace("Breaker ", "")).join(", ")}: the breaker never opened while faults were injected; the chaos experiment did not exercise it (check BREAKER_MIN_CALLS and BREAKER_FAILURE_PERCENT against the fault rates).`,
    );
  if (r.security.probesAllowed > 0)
    security.push(
      `${r.security.probesAllowed} security probes were allowed (${Object.entries(r.security.probeKinds)
        .filter(([, k]) => k.allowed > 0)
        .map(([kind]) => kind)
        .join(", ")}): treat as a release blocker.`,
    );
  if (r.security.probesMisanswered > 0)
    security.push(
      `${r.security.probesMisanswered} security probes were not refused with their expected code (${Object.entries(r.security.probeKinds)
        .filter(([, k]) => k.misanswered > 0)
        .map(
          ([kind, k]) =>
            `${kind}: expected ${k.expected}, got ${Object.keys(k.codes)
              .filter((c) => c !== k.expected)
              .join("/")}`,
        )
        .join("; ")}): a refusal for the wrong reason, or an error, is not a defence.`,
    );
  if (r.security.leaks > 0)
    security.push(`A stored credential appeared in ${r.security.leaks} responses: find the adapter that echoes it and extend the redactor.`);
  if (r.security.provenanceMismatches > 0)
    security.push(
      `${r.security.provenanceMismatches} provenance mismatches: someone holds the signing key; rotate it (\`gateway keys rotate\`) and investigate.`,
    );
  const unintended = r.policy.filter((p) => p.unintended > 0);
  if (unintended.length > 0)
    security.push(
      `Legitimate traffic was denied (${unintended.map((p) => `${p.label}: ${p.unintended}`).join(", ")}): review the bench policies' limits against the traffic you expect.`,
    );
  const fallback = (list: string[], text: string) => (list.length === 0 ? [text] : list);
  return {
    performance: fallback(
      performance,
      `No performance target was missed. The thinnest margin is client-observed overhead p99 at ${ms(r.overhead.p99)} ms of ${t.clientOverheadP99Ms} ms; keep \`npm run bench -- --scenario capacity\` in the release checklist to catch regressions.`,
    ),
    reliability: fallback(
      reliability,
      r.retries.rate === undefined
        ? "No upstream failed during this run, so retries and breakers were not exercised: run the chaos scenario before relying on them."
        : "No reliability target was missed in this run.",
    ),
    security: fallback(
      security,
      r.security.probes === 0
        ? `This traffic sent no probes; no secret appeared in any of ${r.totals.requests - r.security.leaks} responses.`
        : `${r.security.probesRefused} of ${r.security.probes} probes were refused with their expected codes and no secret appeared in any of ${r.totals.requests - r.security.leaks} responses.`,
    ),
  };
}

export function renderMarkdown(d: RunData, r: Results): string {
  const t = d.targets;
  const rec = recommendations(r, d);
  const load = d.run.machine.loadAvg;
  const env = `${d.run.machine.cpuModel} (${d.run.machine.cores} cores), ${d.run.machine.memoryGb} GB RAM, ${d.run.machine.platform}, Node ${d.run.machine.node}${load ? `, 1-minute load average ${load.start.toFixed(1)} at the start and ${load.end.toFixed(1)} at the end${Math.max(load.start, load.end) > d.run.machine.cores ? ` (above the ${d.run.machine.cores} cores: other processes competed for the CPU during this run, which lengthens latency tails)` : ""}` : ""}; ${d.run.gatewayMode === "in-process" ? "gateway and mock upstreams inside the harness process (createGateway), on 127.0.0.1" : d.run.gatewayMode === "external" ? `external gateway (${d.run.config.TARGET ?? "--target"})` : "gateway, mock upstreams and load generator as separate processes on 127.0.0.1"}; store ${d.run.config.DATABASE_URL ? "PostgreSQL" : "embedded SQLite"}, limits ${d.run.config.REDIS_URL ? "Redis" : "in-process"}`;
  const check = (name: string) => r.checks.find((c) => c.name === name)!;
  const toolRow = (tool: (typeof TOOLS)[number]) => {
    const o = r.perTool[tool].overhead;
    const own = r.perTool[tool].selfReported;
    if (o.count === 0) return `| ${tool} | n/a | n/a | n/a | n/a | ❌ (no successful calls) |`;
    return `| ${tool} | ${ms(o.p50)} | ${ms(o.p95)} | ${ms(o.p99)} | ${own.count ? ms(own.p99) : "n/a"} | ${mark(o.p99 <= t.clientOverheadP99Ms)} |`;
  };
  const stageLines = r.stages.map(
    (s) => `  - ${s.label}: target ${s.targetAvgRps.toFixed(1)} RPS average, achieved ${s.achievedRps.toFixed(1)} RPS, error rate ${pct(s.errorRate, 2)}`,
  );
  const throughputFor = (key: string): string => {
    if (key !== d.run.scenario) return `not part of this run (\`npm run bench -- --scenario ${key}\`)`;
    if (key === "chaos" && d.run.chaosWindowS) {
      const [from, to] = d.run.chaosWindowS;
      const inWindow = d.samples.filter((x) => x.t >= from && x.t < to);
      const windowCalls = inWindow.filter((x) => x.expect === "allow");
      const windowOk = windowCalls.filter((x) => x.status >= 200 && x.status < 300).length;
      return `${(inWindow.length / Math.max(1e-9, to - from)).toFixed(1)} RPS during failures, ${pct(windowCalls.length ? windowOk / windowCalls.length : undefined)} of calls still succeeded in the window (retries, stale cache), ${pct(r.successRate, 2)} over the whole run`;
    }
    return `${r.totals.achievedAvgRps.toFixed(1)} RPS average, ${r.totals.peakRps} RPS peak second, ${pct(1 - r.successRate, 2)} error rate`;
  };
  const breakerRow = (tool: string) => {
    const b = r.breakers[tool]!;
    const opened = r.checks.find((c) => c.name === `Breaker ${tool} opened under faults`);
    const closed = r.checks.find((c) => c.name === `Breaker ${tool} closed after faults`);
    const met = opened === undefined && closed === undefined ? undefined : opened?.met !== false && closed?.met !== false;
    return `| ${tool} | ${b.opens} | ${b.avgOpenMs === undefined ? "n/a" : `${ms(b.avgOpenMs, 0)} ms`} | ${b.recoveryMs === undefined ? (b.closedAtEnd ? "n/a" : "still open at the end") : `${ms(b.recoveryMs, 0)} ms`} | ${mark(met)} |`;
  };
  const scenarioSection = (s: (typeof SCENARIO_SECTIONS)[number]) => {
    const ran = s.key === d.run.scenario;
    const lines = [
      `### ${s.title}`,
      `- **Duration:** ${ran ? `${human(d.run.durationS)} (scale ${d.run.scale} of ${s.duration})` : s.duration}`,
      `- **Load:** ${s.load}`,
    ];
    if (!ran) {
      lines.push("- **Result:** NOT RUN in this report", `- **Observations:** Run \`npm run bench -- --scenario ${s.key}\` for this scenario's own report.`);
      return lines.join("\n");
    }
    lines.push(`- **Result:** ${r.verdict === "NOT READY" ? "FAILURE" : "SUCCESS"}`);
    const obs = [
      `${r.totals.requests} requests (${r.totals.calls} calls, ${r.totals.probes} probes); success ${pct(r.successRate, 2)}; overhead p50/p95/p99 ${ms(r.overhead.p50)}/${ms(r.overhead.p95)}/${ms(r.overhead.p99)} ms.`,
    ];
    if (d.run.chaosWindowS)
      obs.push(
        `Faults on from ${d.run.chaosWindowS[0].toFixed(0)} s to ${d.run.chaosWindowS[1].toFixed(0)} s; breaker openings ${Object.entries(r.breakers)
          .map(([tool, b]) => `${tool} ${b.opens}`)
          .join(", ")}; retried calls that succeeded ${pct(r.retries.rate)}.`,
      );
    if (s.key === "cache")
      obs.push(`Hit ratio ${pct(r.cache.ratio)}; hits answered in ${ms(r.cache.hitP50Ms)} ms p50 against ${ms(r.cache.missP50Ms)} ms for misses.`);
    if (s.key === "soak")
      obs.push(
        `RSS from ${r.resources.rssStartMb.toFixed(1)} MB to ${r.resources.rssEndMb.toFixed(1)} MB (peak ${r.resources.rssPeakMb.toFixed(1)} MB); per ${r.trend.unit === "hour" ? "hour" : "sixth of the run"} the average RSS moved ${r.trend.rssGrowthMb >= 0 ? "+" : ""}${r.trend.rssGrowthMb.toFixed(1)} MB and the heap ${r.trend.heapGrowthMb >= 0 ? "+" : ""}${r.trend.heapGrowthMb.toFixed(1)} MB from first to last (table under Resource Efficiency).`,
      );
    if (s.key === "big")
      obs.push(
        `Per stage: ${r.stages.map((st) => `${st.label} ${st.achievedRps.toFixed(1)}/${st.targetAvgRps.toFixed(1)} RPS, ${pct(st.errorRate, 2)} errors`).join("; ")}.`,
      );
    if (s.key === "capacity")
      obs.push(
        r.capacity.steps
          .map(
            (st) =>
              `${st.rateRps} RPS → achieved ${st.achievedRps.toFixed(0)}, overhead p99 ${ms(st.overheadP99Ms)} ms, errors ${pct(st.errorRate, 2)}${st.broke ? ` (broke: ${st.broke})` : ""}`,
          )
          .join("; ") + ".",
      );
    lines.push(`- **Observations:** ${obs.join(" ")}`);
    return lines.join("\n");
  };
  const failures = Object.entries(r.totals.failuresByCode);
  const lines = [
    "# 4Runr Gateway - Proof & Benchmark Report",
    "",
    `**Date:** ${d.run.startedAt.slice(0, 10)}  `,
    `**Test Duration:** ${human(d.run.durationS)} (scenario \`${d.run.scenario}\`: ${d.run.description}; scale ${d.run.scale})  `,
    `**Gateway Version:** ${d.run.gatewayVersion}${d.run.gitCommit ? ` (commit ${d.run.gitCommit})` : ""}  `,
    `**Test Environment:** ${env}`,
    "",
    "## Executive Summary",
    "",
    `This report was generated by \`${d.run.command}\`. Every figure below is computed from the raw data saved next to it (\`samples.ndjson.gz\`, \`metrics-before.txt\`, \`metrics-after.txt\`, \`timeline.ndjson.gz\`, \`run.json\`); \`npm run report -- <this directory>\` regenerates it. Latency is measured from each request's scheduled send time (open model), so a stall cannot hide; gateway overhead is judged as the client sees it (answer time minus the upstream time the gateway reports) and against a bare reverse proxy in the same run, with the gateway's own \`Server-Timing\` figure shown beside it, never instead.`,
    "",
    "### Key Findings",
    "",
    `- **Latency Overhead (client-observed):** ${ms(r.overhead.p50)}/${ms(r.overhead.p95)}/${ms(r.overhead.p99)} ms p50/p95/p99 (Target: p99 ≤${t.clientOverheadP99Ms}ms) ${mark(check("Client-observed overhead p99").met)}; the gateway's own Server-Timing, shown beside it and not judged: ${ms(r.selfReportedOverhead.p50)}/${ms(r.selfReportedOverhead.p95)}/${ms(r.selfReportedOverhead.p99)} ms`,
    `- **Against a bare reverse proxy (same run):** ${check("End-to-end p99 vs bare proxy").value} (Target: ≤×${t.bareRatioP99}) ${mark(check("End-to-end p99 vs bare proxy").met)}`,
    `- **Success Rate:** ${r.faultWindow ? `${pct(r.successRate, 2)} of the ${r.totals.judgedCalls} calls outside the fault window and its recovery (${r.faultWindow.fromS.toFixed(0)}–${r.faultWindow.toS.toFixed(0)} s; inside it ${pct(r.faultWindow.successRate)} of ${r.faultWindow.calls} calls succeeded despite the injected faults), ${r.totals.calls} legitimate calls in all` : `${pct(r.successRate, 2)} of ${r.totals.calls} legitimate calls`}; ${r.totals.probes} security probes counted apart, as expected denials (Target: ≥${pct(t.successRate)}) ${mark(check("Success rate").met)}`,
    `- **Circuit Breaker Effectiveness:** ${
      r.breakerOpenShare
        ? `${Object.entries(r.breakerOpenShare)
            .map(([tool, share]) => `${tool} ${pct(share, 0)}`)
            .join(", ")} open during failures; `
        : ""
    }${r.fastFail.count ? `${r.fastFail.count} calls fast-failed while a breaker was open, p99 ${ms(r.fastFail.p99)} ms` : "no call was fast-failed in this run"} (Target: fast-fail p99 ≤${t.fastFailP99Ms}ms) ${mark(check("Breaker fast-fail p99").met)}`,
    `- **Cache Hit Ratio:** ${pct(r.cache.ratio)} (Target: >${pct(t.cacheHitRatio, 0)}) ${mark(check("Cache hit ratio").met)}`,
    `- **Security Events:** ${r.security.provenanceMismatches} provenance mismatches, ${r.security.revocations} revocations (${r.security.intendedRevocations} intentional: the harness revokes a token to probe with it) (Target: 0/intentional only) ${mark(r.security.provenanceMismatches === 0 && r.security.revocations <= r.security.intendedRevocations)}`,
    ...(r.comparison
      ? [
          `- **Cost against a bare Node reverse proxy:** at ${r.comparison.rateRps.toFixed(0)} RPS over the same mock upstream, end-to-end p50 ${ms(r.comparison.gateway.p50)} ms vs ${ms(r.comparison.bare.p50)} ms (×${r.comparison.ratioP50.toFixed(2)}), p99 ${ms(r.comparison.gateway.p99)} ms vs ${ms(r.comparison.bare.p99)} ms (×${r.comparison.ratioP99.toFixed(2)})`,
        ]
      : []),
    ...(r.generator.trustworthy
      ? [
          `- **Load generator:** sends left ${ms(r.generator.lagP99Ms)} ms late at p99 (max ${ms(r.generator.lagMaxMs)} ms), under the ${GENERATOR_LAG_TRUST_MS} ms trust limit`,
        ]
      : [
          `- **Warning:** the load generator was late by ${ms(r.generator.lagP99Ms)} ms at p99 (max ${ms(r.generator.lagMaxMs)} ms, trust limit ${GENERATOR_LAG_TRUST_MS} ms); tail figures include its own delay, so do not trust them.`,
        ]),
    ...r.stages
      .filter((st) => st.targetAvgRps >= 5 && st.achievedRps < st.targetAvgRps * 0.9)
      .map(
        (st) =>
          `- **Warning:** stage "${st.label}" achieved ${st.achievedRps.toFixed(1)} of ${st.targetAvgRps.toFixed(1)} RPS; the schedule was not delivered.`,
      ),
    "",
    "## Performance Metrics",
    "",
    "### Latency Distribution",
    "",
    `Gateway overhead per tool, client-observed (successful calls; answer time from the scheduled send, minus the upstream time the gateway reports), with the gateway's self-reported Server-Timing p99 beside it (not judged). Target: p99 ≤ ${t.clientOverheadP99Ms} ms.`,
    "",
    "| Tool | P50 (ms) | P95 (ms) | P99 (ms) | Self-reported P99 (ms) | Target Met |",
    "|------|----------|----------|----------|------------------------|------------|",
    ...TOOLS.map(toolRow),
    "",
    `End to end (from scheduled send to last byte, upstream included): p50 ${ms(r.e2e.p50)} ms, p95 ${ms(r.e2e.p95)} ms, p99 ${ms(r.e2e.p99)} ms, max ${ms(r.e2e.max)} ms. Upstream (mock) p50 per tool: ${TOOLS.map((tool) => `${tool} ${ms(r.perTool[tool].upstream.p50)} ms`).join(", ")}.`,
    "",
    "### Throughput Analysis",
    "",
    `- **Baseline Ramp (0→50 RPS):** ${throughputFor("baseline")}`,
    `- **Spike Test (0→150 RPS):** ${throughputFor("spike")}`,
    `- **Soak Test (15 RPS/2h):** ${throughputFor("soak")}`,
    `- **Chaos Window (20 RPS):** ${throughputFor("chaos")}`,
    `- **Production Profile (0→60→120→80→0 RPS):** ${throughputFor("big")}`,
    `- **Capacity Search:** ${d.run.scenario === "capacity" ? `${r.capacity.maxSustainedRps.toFixed(1)} RPS sustained at the last passing step${r.capacity.stoppedOn ? `; stopped at ${r.capacity.stoppedOn.rateRps} RPS (${r.capacity.stoppedOn.broke})` : "; no step broke a target up to the search's ceiling"}` : throughputFor("capacity")}`,
    `- **Stages of this run:**`,
    ...stageLines,
    "",
    "### Resource Utilization",
    "",
    `- **CPU Usage:** ${r.resources.cpuAvgPct.toFixed(1)}% average, ${r.resources.cpuPeakPct.toFixed(1)}% peak (${cpuSource(d)}, user + system, % of one core)`,
    `- **Memory Usage:** ${r.resources.rssAvgMb.toFixed(1)} MB average, ${r.resources.rssPeakMb.toFixed(1)} MB peak (RSS)`,
    `- **Event Loop Lag:** ${ms(r.resources.lagP95Ms)} ms p95 of the per-interval p99 (Target: <${t.eventLoopLagP95Ms}ms) ${mark(check("Event-loop lag p95").met)}`,
    "",
    "## Reliability & Resilience",
    "",
    "### Circuit Breaker Performance",
    "",
    "| Tool | Open Events | Avg Open Duration | Recovery Time | Target Met |",
    "|------|-------------|-------------------|---------------|------------|",
    ...["serpapi", "http_fetch", "openai"].map(breakerRow),
    "",
    `Fast-fail latency (client-observed, calls refused with \`circuit_open\`): ${r.fastFail.count ? `p50 ${ms(r.fastFail.p50)} ms, p99 ${ms(r.fastFail.p99)} ms over ${r.fastFail.count} calls` : "no call was fast-failed"}. Recovery time is measured from the moment faults were switched off to the breaker closing again.`,
    "",
    "### Retry Effectiveness",
    "",
    `- **Retryable Errors:** ${r.retries.retryableErrors} total (calls whose first upstream attempt failed with a timeout, a connection error, a 5xx or a 429)`,
    `- **Successful Retries:** ${r.retries.successfulRetries} (${pct(r.retries.rate)}); per-attempt retry outcomes from \`gateway_retries_total\`: ${r.retries.metricSuccess} succeeded, ${r.retries.metricFailure} failed, ${r.retries.budgetExhausted} refused by the retry budget`,
    `- **Target:** >${pct(t.retrySuccess, 0)} ${mark(check("Retry success").met)}`,
    "",
    "### Cache Performance",
    "",
    `- **Cache Hits:** ${r.cache.hits} requests (${r.cache.stale} of them stale-if-error)`,
    `- **Cache Misses:** ${r.cache.misses} requests`,
    `- **Hit Ratio:** ${pct(r.cache.ratio)} (Target: >${pct(t.cacheHitRatio, 0)}) ${mark(check("Cache hit ratio").met)}`,
    `- **Latency Reduction:** ${r.cache.reduction === undefined ? "n/a" : `${(r.cache.reduction * 100).toFixed(1)}% faster`} for cached responses (p50 ${ms(r.cache.hitP50Ms)} ms vs ${ms(r.cache.missP50Ms)} ms)`,
    "",
    "## Security Validation",
    "",
    "### Policy Enforcement",
    "",
    'Denials by reason; "Success Rate" is the share of those denials that the harness intended (probes). A denial of legitimate traffic lowers it.',
    "",
    "| Policy Type | Denials | Success Rate | Target Met |",
    "|-------------|---------|--------------|------------|",
    ...r.policy.map(
      (p) =>
        `| ${p.label} | ${p.denials} | ${p.denials === 0 ? "n/a" : pct(p.intended / p.denials)} | ${mark(p.denials === 0 ? undefined : p.unintended === 0)} |`,
    ),
    "",
    `Probes sent, refused with the expected code / sent, and every answer they got: ${
      Object.entries(r.security.probeKinds)
        .map(
          ([kind, k]) =>
            `${kind} ${k.refused}/${k.sent} (expected ${k.expected}; got ${Object.entries(k.codes)
              .map(([c, n]) => `${c}×${n}`)
              .join(", ")})`,
        )
        .join("; ") || "none"
    }.`,
    "",
    "### Security Events",
    "",
    `- **Provenance Mismatches:** ${r.security.provenanceMismatches} (Target: 0) ${mark(r.security.provenanceMismatches === 0)}`,
    `- **Token Revocations:** ${r.security.revocations} (Target: intentional only; the harness revoked ${r.security.intendedRevocations}) ${mark(r.security.revocations <= r.security.intendedRevocations)}`,
    `- **Unauthorized Access Attempts:** ${r.security.probesRefused} of ${r.security.probes} refused with their expected code (${r.security.probesAllowed} allowed, ${r.security.probesMisanswered} answered otherwise) ${mark(check("Security probes refused with the expected code").met)}`,
    `- **Plaintext Secret Exposure:** ${r.security.leaks} (every response body scanned for the credentials stored for this run) (Target: 0) ${mark(r.security.leaks === 0)}`,
    "",
    "## Load Test Scenarios",
    "",
    ...SCENARIO_SECTIONS.flatMap((s) => [scenarioSection(s), ""]),
    "## Grafana Dashboard Screenshots",
    "",
    "Screenshots need a browser; this run draws the same views as charts in `report.html` (latency percentiles over time, achieved vs target RPS, breaker state timeline, RSS and event-loop lag). The live dashboards are in `deploy/grafana/dashboards/` and come up with `docker compose up`.",
    "",
    "### Performance Overview",
    "See `report.html` › *Latency percentiles over time* and *Achieved vs target RPS*; dashboard `performance-overview.json`.",
    "",
    "### Circuit Breaker Status",
    "See `report.html` › *Breaker state timeline*; dashboard `circuit-breakers.json`.",
    "",
    "### Error Analysis",
    `Failures of legitimate calls by code: ${failures.length ? failures.map(([c, n]) => `${c} ${n}`).join(", ") : "none"}; dashboard \`error-analysis.json\`.`,
    "",
    "### Security Events",
    "See *Security Validation* above; dashboard `security-events.json`.",
    "",
    "## Detailed Findings",
    "",
    "### Latency Analysis",
    `Overhead stayed at ${ms(r.overhead.p50)} ms median and ${ms(r.overhead.p99)} ms p99 while the upstream took ${TOOLS.map((tool) => `${ms(r.perTool[tool].upstream.p50)} ms (${tool})`).join(", ")} at the median, so the gateway adds ${r.e2e.p50 > 0 ? pct(r.overhead.p50 / r.e2e.p50) : "n/a"} of a typical call's time. ${r.comparison ? `Against the bare proxy in the same run the gateway adds ${ms(r.comparison.addedP50Ms)} ms at p50 and ${ms(r.comparison.addedP99Ms)} ms at p99 end to end.` : ""} The generator's own send lag was ${ms(r.generator.lagP99Ms)} ms p99${r.generator.trustworthy ? ", small enough to trust the tail" : ", too large to trust the tail"}.`,
    "",
    "### Reliability Insights",
    `${r.retries.retryableErrors === 0 ? "No upstream failure occurred, so retries and breakers stayed idle." : `${r.retries.retryableErrors} calls met a retryable upstream failure; ${pct(r.retries.rate)} of them still succeeded thanks to retries.`} ${Object.entries(
      r.breakers,
    )
      .filter(([, b]) => b.opens > 0)
      .map(([tool, b]) => `The ${tool} breaker opened ${b.opens} time(s), open ${b.avgOpenMs === undefined ? "n/a" : ms(b.avgOpenMs / 1000, 1)} s on average.`)
      .join(" ")} ${failures.length ? `Legitimate calls that failed: ${failures.map(([c, n]) => `${n} × ${c}`).join(", ")}.` : "No legitimate call failed."}`,
    "",
    "### Security Posture",
    `${r.security.probes} probes (out-of-scope calls, tampered, forged, revoked and expired tokens, an exhausted quota, off-hours and rate-limited agents) were sent; ${r.security.probesRefused} were refused with their expected code, ${r.security.probesAllowed} allowed and ${r.security.probesMisanswered} answered otherwise. The gateway checked ${r.security.tokenChecks} tokens during the run. No stored credential appeared in ${r.totals.requests - r.security.leaks} of ${r.totals.requests} response bodies.`,
    "",
    "### Resource Efficiency",
    `Resource trend per ${r.trend.unit === "hour" ? "hour" : "sixth of the run (the run is shorter than two hours)"}, sampled every few seconds from the gateway's /metrics:`,
    "",
    "| Window | RSS avg (MB) | RSS max (MB) | Heap avg (MB) | Event-loop lag p95 (ms) |",
    "|--------|--------------|--------------|---------------|-------------------------|",
    ...(r.trend.buckets.length
      ? r.trend.buckets.map(
          (b) =>
            `| ${b.label} (${b.fromS.toFixed(0)}–${b.toS.toFixed(0)} s) | ${b.rssAvgMb.toFixed(1)} | ${b.rssMaxMb.toFixed(1)} | ${b.heapAvgMb.toFixed(1)} | ${ms(b.lagP95Ms)} |`,
        )
      : ["| no samples | n/a | n/a | n/a | n/a |"]),
    "",
    `RSS went from ${r.resources.rssStartMb.toFixed(1)} MB to ${r.resources.rssEndMb.toFixed(1)} MB (peak ${r.resources.rssPeakMb.toFixed(1)} MB) and CPU averaged ${r.resources.cpuAvgPct.toFixed(1)}% of a core at ${r.totals.achievedAvgRps.toFixed(1)} RPS, i.e. about ${r.totals.achievedAvgRps > 0 ? ((r.resources.cpuAvgPct / 100 / r.totals.achievedAvgRps) * 1000).toFixed(2) : "n/a"} ms of CPU per request.`,
    "",
    "## Recommendations",
    "",
    "### Performance Optimizations",
    ...rec.performance.map((x, i) => `${i + 1}. ${x}`),
    "",
    "### Reliability Improvements",
    ...rec.reliability.map((x, i) => `${i + 1}. ${x}`),
    "",
    "### Security Enhancements",
    ...rec.security.map((x, i) => `${i + 1}. ${x}`),
    "",
    "## Capacity Planning",
    "",
    ...capacity(r),
    "",
    "## Conclusion",
    "",
    `Verdict rule: a missed critical target (${r.checks
      .filter((c) => c.critical)
      .map((c) => c.name)
      .join(", ")}) means NOT READY; only non-critical misses (${r.checks
      .filter((c) => !c.critical)
      .map((c) => c.name)
      .join(
        ", ",
      )}) mean CONDITIONAL; no miss means READY. A check this scenario sets out to exercise is always judged; only checks outside its purpose are left out (${
      r.checks
        .filter((c) => c.met === undefined)
        .map((c) => c.name)
        .join(", ") || "none"
    }). ${r.missed.length === 0 ? "This run missed no target." : `Missed: ${r.missed.map((c) => `${c.name} (${c.value}, target ${c.target})`).join("; ")}.`}`,
    "",
    `**Production Readiness:** ${r.verdict === "READY" ? "✅ READY" : r.verdict === "CONDITIONAL" ? "⚠️ CONDITIONAL" : "❌ NOT READY"}`,
    "",
    "### Next Steps",
    ...nextSteps(r, d).map((x, i) => `${i + 1}. ${x}`),
    "",
    "---",
    "",
    `**Report Generated:** ${new Date().toISOString()}  `,
    `**Test Suite Version:** bench/harness (same commit as the gateway)  `,
    `**Gateway Version:** ${d.run.gatewayVersion}  `,
    `**Environment:** ${env}`,
    "",
  ];
  return lines.join("\n");
}

function capacity(r: Results): string[] {
  const c = r.capacity;
  const inst = (n: number | undefined) => (n === undefined ? "n/a (no CPU figures)" : String(n));
  return [
    "### Current Capacity",
    `- **Maximum Sustained RPS:** ${c.maxSustainedRps.toFixed(1)} RPS ${c.searched ? `(last capacity step that met every target${c.stoppedOn ? `; ${c.stoppedOn.rateRps} RPS broke on ${c.stoppedOn.broke}` : ""})` : "(best stage of this run with errors within target; run the `capacity` scenario for the breaking point)"}`,
    `- **Peak Burst Capacity:** ${c.peakBurstRps} RPS in the busiest second`,
    `- **Resource Headroom:** ${c.headroomPct.toFixed(0)}% of one core left at peak CPU; ${c.cpuMsPerRequest === undefined ? "no CPU figures" : `${c.cpuMsPerRequest.toFixed(2)} ms CPU per request, so about ${c.perInstanceByCpu!.toFixed(0)} RPS per instance at 70% of a core`}`,
    "",
    "### Scaling Recommendations",
    `- **Horizontal Scaling:** ${c.plan.map((p) => `${inst(p.instances)} instances for ${p.rps} RPS`).join(", ")} (planned at ${c.perInstance === undefined ? "n/a" : c.perInstance.toFixed(0)} RPS per instance${c.searched ? ": 70% of the measured maximum, or the CPU extrapolation if lower" : ": the CPU extrapolation"}; instances share PostgreSQL and Redis; see docs/scaling.md)`,
    `- **Vertical Scaling:** 1 CPU core and ${Math.max(0.25, Math.ceil((c.rssPeakMb * 2) / 256) * 0.25).toFixed(2)} GB RAM per instance (twice the ${c.rssPeakMb.toFixed(0)} MB peak RSS here, rounded up); Node runs JavaScript on one core per process, so add processes rather than cores`,
    "- **Infrastructure:** PostgreSQL for the shared registry and audit log, Redis for shared limits and cluster messages, a load balancer in front with `/ready` as its health check (see `deploy/`)",
  ];
}

function cpuSource(d: RunData): string {
  if (d.run.gatewayMode === "in-process")
    return "harness process, which holds the gateway, the mock upstreams and the generator, so this is an upper bound for the gateway";
  return "gateway process only";
}

function nextSteps(r: Results, d: RunData): string[] {
  const steps = r.missed.map((c) => `Fix: ${c.name} was ${c.value} against ${c.target}.`);
  if (d.run.scale < 1) steps.push(`Run the full-length scenario (\`npm run bench -- --scenario ${d.run.scenario}\`); this one was scaled by ${d.run.scale}.`);
  for (const s of ["baseline", "chaos", "soak", "spike"])
    if (s !== d.run.scenario && steps.length < 3) steps.push(`Run \`npm run bench -- --scenario ${s}\` and keep its report with this one.`);
  return steps.slice(0, Math.max(3, r.missed.length));
}
