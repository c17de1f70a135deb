/**
 * JSON with object keys sorted at every level, so equal values give equal text (hashes, cache keys,
 * idempotency fingerprints). Iterative, so a deeply nested value cannot overflow the call stack:
 * callers on the request path bound depth first (`checkParamsBounds`), but the audit trail and the
 * fingerprints must never throw whatever they are handed.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  // A call's parameters are canonicalised for the cache key and the audit fingerprint alike: once.
  const known = memo.get(value);
  if (known !== undefined) return known;
  const text = shallowCanonical(value, 0) ?? deepCanonical(value);
  memo.set(value, text);
  return text;
}

/** Texts of objects already canonicalised; values on the road are never mutated once built. */
const memo = new WeakMap<object, string>();
const RECURSION_LIMIT = 64;

/** The fast way (recursion, string concatenation); undefined when the value nests deeper than RECURSION_LIMIT. */
function shallowCanonical(v: unknown, depth: number): string | undefined {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (depth >= RECURSION_LIMIT) return undefined;
  let text: string;
  if (Array.isArray(v)) {
    text = "[";
    for (let i = 0; i < v.length; i++) {
      const element = shallowCanonical(v[i], depth + 1);
      if (element === undefined) return undefined;
      text += i > 0 ? `,${element}` : element;
    }
    return `${text}]`;
  }
  const record = v as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  text = "{";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const element = shallowCanonical(record[k], depth + 1);
    if (element === undefined) return undefined;
    text += `${i > 0 ? "," : ""}${JSON.stringify(k)}:${element}`;
  }
  return `${text}}`;
}

/** The same text for any depth, without recursion. */
function deepCanonical(value: unknown): string {
  const out: string[] = [];
  // Work items: a value to write, or a literal piece of text (separators, closers, keys).
  const stack: ({ text: string } | { value: unknown })[] = [{ value }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if ("text" in item) {
      out.push(item.text);
      continue;
    }
    const v = item.value;
    if (v === null || typeof v !== "object") {
      out.push(JSON.stringify(v) ?? "null");
      continue;
    }
    const pieces: ({ text: string } | { value: unknown })[] = [];
    if (Array.isArray(v)) {
      pieces.push({ text: "[" });
      v.forEach((element, i) => {
        if (i > 0) pieces.push({ text: "," });
        pieces.push({ value: element });
      });
      pieces.push({ text: "]" });
    } else {
      const record = v as Record<string, unknown>;
      pieces.push({ text: "{" });
      Object.keys(record)
        .sort()
        .forEach((k, i) => {
          pieces.push({ text: `${i > 0 ? "," : ""}${JSON.stringify(k)}:` }, { value: record[k] });
        });
      pieces.push({ text: "}" });
    }
    for (let i = pieces.length - 1; i >= 0; i--) stack.push(pieces[i]!);
  }
  return out.join("");
}

/** Limits on a call's parameters, checked before anything walks them recursively (schema validation, adapters). */
export const PARAMS_LIMITS = { maxDepth: 32, maxNodes: 20_000 } as const;

/**
 * Measures a JSON value iteratively. Returns the first limit it breaks, or undefined.
 * Depth counts containers: `{}` is depth 1, `{"a":[1]}` depth 2.
 */
export function exceedsBounds(value: unknown, limits: { maxDepth: number; maxNodes: number } = PARAMS_LIMITS): "depth" | "size" | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++nodes > limits.maxNodes) return "size";
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > limits.maxDepth) return "depth";
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return undefined;
}
