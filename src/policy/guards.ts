import { domainToASCII } from "node:url";
import type { RE2JS } from "re2js";
import { compileLinearRegExp } from "../util/linear-regexp.js";
import type { Guard } from "./types.js";

/** Derived fields whose values are host names: compared after `normaliseHost` on both sides. */
const HOST_FIELDS = new Set(["url.host", "recipients.domain"]);
/** Derived fields whose values are e-mail addresses: the domain part is normalised like a host. */
const ADDRESS_FIELDS = new Set(["recipients"]);

/**
 * The one spelling of a host name that guards compare: lower-case, IDNA to ASCII (punycode), one
 * trailing dot stripped (`evil.test.` is the same host as `evil.test` to DNS, so it must be to a
 * guard). A leading `*.` wildcard survives. IP literals lose their brackets.
 */
export function normaliseHost(host: string): string {
  let name = host.toLowerCase();
  if (name.startsWith("[") && name.endsWith("]")) return name.slice(1, -1);
  if (name.endsWith(".")) name = name.slice(0, -1);
  const wildcard = name.startsWith("*.");
  const ascii = domainToASCII(wildcard ? name.slice(2) : name);
  // domainToASCII answers "" for what is not a valid domain: keep the lower-cased text then, so it
  // still compares unequal to every real entry instead of equal to an empty one.
  const normalised = ascii === "" ? (wildcard ? name.slice(2) : name) : ascii;
  return wildcard ? `*.${normalised}` : normalised;
}

/**
 * A URL path as servers read it: percent-encoded unreserved characters decoded (RFC 3986 §6.2.2.2),
 * so `/%61dmin` meets a guard on `/admin`. Dot segments are already resolved by the URL parser.
 */
export function normalisePath(pathname: string): string {
  return pathname.replace(/%([0-9a-f]{2})/gi, (escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : escape.toUpperCase();
  });
}

function normaliseAddress(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? address.toLowerCase() : `${address.slice(0, at).toLowerCase()}@${normaliseHost(address.slice(at + 1))}`;
}

/**
 * Values a guard can address: any parameter by dotted path (own properties only: `constructor` or
 * `__proto__` are missing, not inherited), plus fields derived from the parameters of the built-in
 * tools (`url.host`, `method`, `recipients`, `recipients.domain`, …).
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
        return normaliseHost(url.hostname);
      case "url.scheme":
        return url.protocol.slice(0, -1);
      case "url.port":
        return url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
      case "url.path":
        return normalisePath(url.pathname);
    }
  }
  if (path === "method" && tool === "http_fetch") return action.toUpperCase();
  if (path === "recipients" || path === "recipients.domain" || path === "recipients.count") {
    const list = ["to", "cc", "bcc"].flatMap((k) => {
      const v = Object.hasOwn(params, k) ? params[k] : undefined;
      return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
    });
    if (path === "recipients.count") return list.length;
    if (path === "recipients.domain") return list.map((r) => normaliseHost(r.slice(r.lastIndexOf("@") + 1)));
    return list.map(normaliseAddress);
  }
  let value: unknown = params;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, part)) return undefined;
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

/** Policy entries are few and fixed: their normalised spellings are kept, not recomputed per call. */
const normalisedEntries = new Map<string, string>();
function normalisedEntry(entry: string | number | boolean, path: string): string | number | boolean {
  if (typeof entry !== "string") return entry;
  const host = HOST_FIELDS.has(path);
  if (!host && !ADDRESS_FIELDS.has(path)) return entry;
  const key = `${host ? "h" : "a"}\n${entry}`;
  let normalised = normalisedEntries.get(key);
  if (normalised === undefined) {
    normalised = host ? normaliseHost(entry) : normaliseAddress(entry);
    if (normalisedEntries.size > 10_000) normalisedEntries.clear();
    normalisedEntries.set(key, normalised);
  }
  return normalised;
}

/** The compiled pattern, or undefined for one RE2 refuses (only policies stored before patterns were RE2 can hold one). */
const refusedPatterns = new Set<string>();
function usablePattern(pattern: string): RE2JS | undefined {
  if (refusedPatterns.has(pattern)) return undefined;
  try {
    return compileGuardPattern(pattern);
  } catch {
    if (refusedPatterns.size > 10_000) refusedPatterns.clear();
    refusedPatterns.add(pattern);
    return undefined;
  }
}

/**
 * Longest string a pattern is matched against (URLs are at most 4096 too). With the program bound
 * this caps one match at a few milliseconds; past it a value is not matched: it fails an allow
 * rule's pattern and trips a deny rule's (fails closed both ways).
 */
export const MAX_PATTERN_INPUT_CHARS = 4096;

const compiledPatterns = new Map<string, RE2JS>();
/**
 * A guard's pattern compiled once with RE2 (`compileLinearRegExp`): linear-time matching.
 * @throws Error when the pattern is not valid RE2 syntax or is too large
 */
export function compileGuardPattern(pattern: string): RE2JS {
  let r = compiledPatterns.get(pattern);
  if (r === undefined) {
    r = compileLinearRegExp(pattern);
    if (compiledPatterns.size > 10_000) compiledPatterns.clear();
    compiledPatterns.set(pattern, r);
  }
  return r;
}

/**
 * How a guard is read. `constraint` (an allow rule's): every item of an array must pass. `condition`
 * (a deny rule's): the rule applies when some item matches, so one outside recipient among innocent
 * ones still trips `recipients.domain`.
 */
export type GuardMode = "constraint" | "condition";

/** Checks one scalar against a guard; returns why it fails, or undefined when it passes. */
function checkScalar(path: string, value: unknown, g: Guard, mode: GuardMode): string | undefined {
  const entry = (e: string | number | boolean) => normalisedEntry(e, path);
  if (g.equals !== undefined && !matchesEntry(value, entry(g.equals))) return `must equal ${JSON.stringify(g.equals)}`;
  if (g.oneOf !== undefined && !g.oneOf.some((e) => matchesEntry(value, entry(e)))) return `must be one of ${JSON.stringify(g.oneOf)}`;
  if (g.notOneOf !== undefined && g.notOneOf.some((e) => matchesEntry(value, entry(e)))) return `must not be one of ${JSON.stringify(g.notOneOf)}`;
  if (g.pattern !== undefined) {
    if (typeof value !== "string") return `must match /${g.pattern}/`;
    const pattern = usablePattern(g.pattern);
    // Undecidable (too long, or a pattern stored before RE2 that RE2 cannot run): fail closed both ways.
    if (value.length > MAX_PATTERN_INPUT_CHARS || pattern === undefined) {
      if (mode === "constraint")
        return pattern === undefined
          ? `cannot be matched: the policy's pattern /${g.pattern}/ is not one RE2 can run (fix the policy)`
          : `is longer than the ${MAX_PATTERN_INPUT_CHARS} characters a pattern is matched against`;
    } else if (!pattern.test(value)) return `must match /${g.pattern}/`;
  }
  if (g.maxLength !== undefined && (typeof value !== "string" || value.length > g.maxLength)) return `must be at most ${g.maxLength} characters`;
  if (g.min !== undefined && (typeof value !== "number" || value < g.min)) return `must be at least ${g.min}`;
  if (g.max !== undefined && (typeof value !== "number" || value > g.max)) return `must be at most ${g.max}`;
  return undefined;
}

/** A value as it is quoted in a denial: bounded, and never undefined (functions, symbols). */
const quoted = (value: unknown) => (JSON.stringify(value) ?? String(value)).slice(0, 100);

/** Returns why `value` fails the guard (naming the path), or undefined when it passes (see `GuardMode` for arrays). */
export function checkGuard(path: string, value: unknown, g: Guard, mode: GuardMode = "constraint"): string | undefined {
  if (value === undefined || value === null) return g.optional ? undefined : `${path} is required by policy`;
  if (Array.isArray(value)) {
    if (g.maxItems !== undefined && value.length > g.maxItems) return `${path} has ${value.length} items; at most ${g.maxItems} allowed`;
    let firstFailure: string | undefined;
    for (const item of value) {
      const why = checkScalar(path, item, g, mode);
      if (why === undefined && mode === "condition") return undefined;
      if (why !== undefined) firstFailure ??= `${path} ${quoted(item)} ${why}`;
      if (why !== undefined && mode === "constraint") return firstFailure;
    }
    return mode === "condition" && value.length === 0 ? `${path} is empty` : firstFailure;
  }
  const why = checkScalar(path, value, g, mode);
  return why === undefined ? undefined : `${path} ${quoted(value)} ${why}`;
}
