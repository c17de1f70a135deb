import { GatewayError } from "../errors/index.js";

export type ChaosFault = "timeout" | "error500" | "latency" | "reset";

/** Fault probabilities for one tool (or for all), each in [0, 1]; their sum must not exceed 1 except latency, which adds to the others. */
export interface ChaosSettings {
  timeout?: number;
  error500?: number;
  reset?: number;
  latency?: number;
  /** Size of an injected latency spike. */
  latencyMs?: number;
}

const FIELDS = ["timeout", "error500", "reset", "latency"] as const;

/** @throws GatewayError invalid_request naming the field */
export function parseChaosSettings(input: unknown, where = "chaos"): ChaosSettings {
  if (input === null || typeof input !== "object" || Array.isArray(input))
    throw new GatewayError("invalid_request", `${where} must be an object like {"timeout":0.3,"error500":0.25,"latency":0.2,"latencyMs":800}`);
  const out: ChaosSettings = {};
  for (const [key, value] of Object.entries(input)) {
    if (key === "latencyMs") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 120_000)
        throw new GatewayError("invalid_request", `${where}.latencyMs must be an integer between 0 and 120000`);
      out.latencyMs = value;
    } else if ((FIELDS as readonly string[]).includes(key)) {
      if (typeof value !== "number" || !(value >= 0 && value <= 1))
        throw new GatewayError("invalid_request", `${where}.${key} must be a probability between 0 and 1`);
      out[key as (typeof FIELDS)[number]] = value;
    } else throw new GatewayError("invalid_request", `${where}.${key} is not a chaos setting (timeout, error500, reset, latency, latencyMs)`);
  }
  if ((out.timeout ?? 0) + (out.error500 ?? 0) + (out.reset ?? 0) > 1)
    throw new GatewayError("invalid_request", `${where}: timeout + error500 + reset must not exceed 1`);
  return out;
}

/** Parses the CHAOS environment value: `{"*": {...}, "serpapi": {...}}`. */
export function parseChaosEnv(text: string | undefined): Record<string, ChaosSettings> {
  if (text === undefined || text.trim() === "") return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new GatewayError("invalid_request", 'CHAOS must be JSON like {"serpapi":{"timeout":0.3}}');
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new GatewayError("invalid_request", "CHAOS must be a JSON object keyed by tool (or *)");
  return Object.fromEntries(Object.entries(raw).map(([tool, s]) => [tool, parseChaosSettings(s, `CHAOS.${tool}`)]));
}

export interface InjectedFaults {
  /** A failure instead of the upstream call, or undefined to call it. */
  failure?: "timeout" | "error500" | "reset";
  latencyMs: number;
}

/** Fault injection at the upstream boundary. Off unless configured; per tool, with `*` for all. */
export class ChaosController {
  private settings = new Map<string, ChaosSettings>();

  constructor(initial: Record<string, ChaosSettings> = {}) {
    for (const [tool, s] of Object.entries(initial)) this.set(tool, s);
  }

  set(tool: string, settings: ChaosSettings): void {
    if (Object.values(settings).every((v) => !v)) this.settings.delete(tool);
    else this.settings.set(tool, settings);
  }

  clear(tool?: string): void {
    if (tool === undefined) this.settings.clear();
    else this.settings.delete(tool);
  }

  active(): boolean {
    return this.settings.size > 0;
  }

  describe(): Record<string, ChaosSettings> {
    return Object.fromEntries(this.settings);
  }

  /** Draws the faults for one upstream attempt. */
  draw(tool: string, random: () => number = Math.random): InjectedFaults {
    const s = this.settings.get(tool) ?? this.settings.get("*");
    if (s === undefined) return { latencyMs: 0 };
    const latencyMs = random() < (s.latency ?? 0) ? (s.latencyMs ?? 1000) : 0;
    const roll = random();
    let edge = 0;
    for (const fault of ["timeout", "error500", "reset"] as const) {
      edge += s[fault] ?? 0;
      if (roll < edge) return { failure: fault, latencyMs };
    }
    return { latencyMs };
  }
}

/**
 * A seeded random source in [0, 1) (mulberry32): the same seed gives the same sequence, so chaos
 * runs and tests replay the same faults. Not for anything secret.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
