import type { Stage } from "./schedule.js";

export interface Scenario {
  name: string;
  description: string;
  /** Stages at full length (seconds); `--duration` scales them. */
  stages: Stage[];
  /** Traffic mix: `mixed` is the production mix with probes; `cache` repeats a small set of queries. */
  traffic: "mixed" | "cache";
  /** Fault injection window as fractions of the run: on at `from`, off at `to`. */
  chaos?: { from: number; to: number; settings: Record<string, Record<string, number>> };
  /** Capacity search: keep stepping up while targets hold. */
  capacity?: { startRps: number; factor: number; stepS: number; maxRps: number };
}

const min = (m: number) => m * 60;
const CHAOS_FAULTS = { timeout: 0.3, error500: 0.25, latency: 0.2, latencyMs: 800 };

export const SCENARIOS: Record<string, Scenario> = {
  baseline: {
    name: "baseline",
    description: "Ramp 0 → 50 RPS over 10 minutes",
    stages: [{ durationS: min(10), fromRps: 0, toRps: 50, label: "ramp 0→50" }],
    traffic: "mixed",
  },
  spike: {
    name: "spike",
    description: "0 → 150 RPS spike over 2.5 minutes",
    stages: [
      { durationS: 30, fromRps: 0, toRps: 20, label: "warm-up" },
      { durationS: 30, fromRps: 20, toRps: 150, label: "spike up" },
      { durationS: 60, fromRps: 150, toRps: 150, label: "hold 150" },
      { durationS: 30, fromRps: 150, toRps: 0, label: "down" },
    ],
    traffic: "mixed",
  },
  soak: { name: "soak", description: "15 RPS for 2 hours", stages: [{ durationS: min(120), fromRps: 15, toRps: 15, label: "soak 15" }], traffic: "mixed" },
  chaos: {
    name: "chaos",
    description: "20 RPS for 6 minutes; 30 % timeouts, 25 % 500s, 20 % latency spikes from minute 2 to minute 4",
    stages: [{ durationS: min(6), fromRps: 20, toRps: 20, label: "20 RPS" }],
    traffic: "mixed",
    chaos: { from: 1 / 3, to: 2 / 3, settings: { serpapi: CHAOS_FAULTS, http_fetch: CHAOS_FAULTS, openai: CHAOS_FAULTS } },
  },
  cache: {
    name: "cache",
    description: "Repeated queries at 30 RPS for 5 minutes",
    stages: [{ durationS: min(5), fromRps: 30, toRps: 30, label: "30 RPS" }],
    traffic: "cache",
  },
  big: {
    name: "big",
    description: "The earlier version's 40-minute profile",
    stages: [
      { durationS: min(10), fromRps: 0, toRps: 60, label: "ramp 0→60" },
      { durationS: min(10), fromRps: 60, toRps: 60, label: "sustain 60" },
      { durationS: min(2), fromRps: 60, toRps: 120, label: "spike 120" },
      { durationS: min(3), fromRps: 120, toRps: 60, label: "back to 60" },
      { durationS: min(10), fromRps: 60, toRps: 80, label: "wave 60→80" },
      { durationS: min(5), fromRps: 80, toRps: 0, label: "ramp down" },
    ],
    traffic: "mixed",
  },
  capacity: {
    name: "capacity",
    description: "Step the rate up until p99 overhead or errors break the targets",
    stages: [],
    traffic: "mixed",
    capacity: { startRps: 50, factor: 1.5, stepS: 30, maxRps: 3000 },
  },
};

/** Scales every stage by `scale` (e.g. 0.05 for a quick run), keeping at least one second each. */
export function scaledStages(s: Scenario, scale: number): Stage[] {
  return s.stages.map((st) => ({ ...st, durationS: Math.max(1, st.durationS * scale) }));
}
