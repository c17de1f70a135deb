import type { Guard } from "./types.js";

/**
 * Values a guard can address: any parameter by dotted path, plus fields derived from the
 * parameters of the built-in tools (`url.host`, `method`, `recipients`, `recipients.domain`, …).
 */
export function guardValue(path: string, tool: string, action: string, params: Record<string, unknown>): unknown {
  if (path.startsWith("url.") && typeof params.url === "string") {
    let url: URL;
    try {
      url = new URL(params.url);
    } catch {
      return undefined;
    }
    switch (path) {
      case "url.host":
        return url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
      case "url.scheme":
        return url.protocol.slice(0, -1);
      case "url.port":
        return url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
      case "url.path":
        return url.pathname;
    }
  }
  if (path === "method" && tool === "http_fetch") return action.toUpperCase();
  if (path === "recipients" || path === "recipients.domain" || path === "recipients.count") {
    const list = ["to", "cc", "bcc"].flatMap((k) => (params[k] === undefined ? [] : Array.isArray(params[k]) ? (params[k] as unknown[]).map(String) : [String(params[k])]));
    if (path === "recipients.count") return list.length;
    if (path === "recipients.domain") return list.map((r) => r.slice(r.lastIndexOf("@") + 1).toLowerCase());
    return list.map((r) => r.toLowerCase());
  }
  let value: unknown = params;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** `*.example.org` matches subdomains of example.org (not example.org itself); otherwise equality (case-insensitive for strings). */
export function matchesEntry(value: unknown, entry: string | number | boolean): boolean {
  if (typeof entry === "string" && typeof value === "string") {
    const v = value.toLowerCase();
    const e = entry.toLowerCase();
    if (e.startsWith("*.")) return v.endsWith(e.slice(1)) && v.length > e.length - 1;
    return v === e;
  }
  return value === entry;
}

const compiledPatterns = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
  let r = compiledPatterns.get(pattern);
  if (r === undefined) {
    r = new RegExp(pattern, "u");
    if (compiledPatterns.size > 10_000) compiledPatterns.clear();
    compiledPatterns.set(pattern, r);
  }
  return r;
}

/** Checks one scalar against a guard; returns why it fails, or undefined when it passes. */
function checkScalar(value: unknown, g: Guard): string | undefined {
  if (g.equals !== undefined && !matchesEntry(value, g.equals)) return `must equal ${JSON.stringify(g.equals)}`;
  if (g.oneOf !== undefined && !g.oneOf.some((e) => matchesEntry(value, e))) return `must be one of ${JSON.stringify(g.oneOf)}`;
  if (g.notOneOf !== undefined && g.notOneOf.some((e) => matchesEntry(value, e))) return `must not be one of ${JSON.stringify(g.notOneOf)}`;
  if (g.pattern !== undefined && (typeof value !== "string" || !regex(g.pattern).test(value))) return `must match /${g.pattern}/`;
  if (g.maxLength !== undefined && (typeof value !== "string" || value.length > g.maxLength)) return `must be at most ${g.maxLength} characters`;
  if (g.min !== undefined && (typeof value !== "number" || value < g.min)) return `must be at least ${g.min}`;
  if (g.max !== undefined && (typeof value !== "number" || value > g.max)) return `must be at most ${g.max}`;
  return undefined;
}

/** Returns why `value` fails the guard (naming the path), or undefined when it passes. Arrays: every item must pass. */
export function checkGuard(path: string, value: unknown, g: Guard): string | undefined {
  if (value === undefined || value === null) return g.optional ? undefined : `${path} is required by policy`;
  if (Array.isArray(value)) {
    if (g.maxItems !== undefined && value.length > g.maxItems) return `${path} has ${value.length} items; at most ${g.maxItems} allowed`;
    for (const item of value) {
      const why = checkScalar(item, g);
      if (why !== undefined) return `${path} ${JSON.stringify(item).slice(0, 100)} ${why}`;
    }
    return undefined;
  }
  const why = checkScalar(value, g);
  return why === undefined ? undefined : `${path} ${JSON.stringify(value).slice(0, 100)} ${why}`;
}
