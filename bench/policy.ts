/**
 * Policy evaluation speed: `npm run bench:policy`. An agent with 100 applicable rules (allows,
 * denies, guards, schedules, quotas, rate limits across global, role and agent policies); prints
 * decisions per second and the p50/p99 time of one evaluation, plus the in-process counters' cost.
 */
import { performance } from "node:perf_hooks";
import hdr from "hdr-histogram-js";
import { MemoryCounters } from "../src/limits/counters.js";
import { evaluate } from "../src/policy/evaluate.js";
import { parsePolicy, policyHash } from "../src/policy/schema.js";
import type { Policy, Rule } from "../src/policy/types.js";

const tools = ["serpapi:search", "http_fetch:get", "openai:chat", "gmail_send:send", "crm:get", "crm:put"];
function rules(n: number, offset: number): Rule[] {
  return Array.from({ length: n }, (_, i): Rule => {
    const k = (i + offset) % 6;
    const scope = tools[(i + offset) % tools.length]!;
    if (k === 0) return { effect: "allow", scopes: [scope, "serpapi:search"] };
    if (k === 1) return { effect: "deny", scopes: [`nope${i}:*`] };
    if (k === 2)
      return { effect: "allow", scopes: ["serpapi:search"], guards: { q: { maxLength: 500 }, engine: { oneOf: ["google", "bing"], optional: true } } };
    if (k === 3)
      return {
        effect: "allow",
        scopes: ["*"],
        schedule: { days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], hours: "00:00-24:00", timeZone: i % 2 ? "America/Toronto" : "Europe/Paris" },
      };
    if (k === 4) return { effect: "allow", scopes: ["serpapi:*"], quota: { limit: 1_000_000_000, per: i % 2 ? "day" : "hour", timeZone: "UTC" } };
    return { effect: "allow", scopes: ["*"], rateLimit: { perSecond: 1_000_000, burst: 1_000_000 } };
  });
}
const policy = (name: string, subject: Policy["document"]["subject"], r: Rule[]): Policy => {
  const document = parsePolicy({ name, subject, rules: r });
  return { id: name, version: 1, hash: policyHash(document), document };
};
const policies = [
  policy("global", { all: true }, rules(30, 0)),
  policy("role", { role: "researcher" }, rules(40, 1)),
  policy("agent", { agentId: "agent-1" }, rules(30, 2)),
];
const applicable = policies.reduce((n, p) => n + p.document.rules.length, 0);
const input = {
  agent: { id: "agent-1", role: "researcher" },
  token: { scopes: ["*:*"] },
  call: { tool: "serpapi", action: "search", params: { q: "coffee near me", engine: "google" } },
  policies,
};
const counters = new MemoryCounters();

function run(label: string, iterations: number, withCounters: boolean) {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: 3 });
  let limits = 0;
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    const now = Date.UTC(2026, 10, 24, 15, 0) + i;
    const d = evaluate({ ...input, now });
    if (!d.allow) throw new Error(`unexpected denial: ${d.message}`);
    limits = d.limits.length;
    if (withCounters) counters.consumeSync(d.limits, now);
    h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${label.padEnd(34)} ${Math.round(iterations / seconds)
      .toLocaleString("en")
      .padStart(
        9,
      )} decisions/s   p50 ${(h.getValueAtPercentile(50) / 1000).toFixed(1)} µs   p99 ${(h.getValueAtPercentile(99) / 1000).toFixed(1)} µs   (${limits} limits per call)`,
  );
}

console.log(`policy evaluation: ${applicable} applicable rules in ${policies.length} policies (Node ${process.version})`);
run("warm-up", 20_000, false);
run("evaluate (pure)", 100_000, false);
run("evaluate + in-process counters", 100_000, true);
