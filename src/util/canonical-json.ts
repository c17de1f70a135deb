/**
 * JSON with object keys sorted at every level, so equal values give equal text (hashes, cache keys,
 * idempotency fingerprints). Iterative, so a deeply nested value cannot overflow the call stack:
 * callers on the request path bound depth first (`checkParamsBounds`), but the audit trail and the
 * fingerprints must never throw whatever they are handed.
 */
export function canonicalJson(value: unknown): string {
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
