import { createHash } from "node:crypto";

/** OpenAI function names: 1-64 of letters, digits, `_` and `-`; MCP tool names fit in the same set. */
export const MAX_TOOL_NAME = 64;

/**
 * The MCP tool name of a catalog action: `<tool>__<action>` (e.g. `serpapi__search`), valid as an
 * OpenAI function name too. A name that would be longer than 64 characters keeps its first 55 and
 * ends with `_` and 8 hex digits of its hash, so it stays unique and stable.
 */
export function mcpToolName(tool: string, action: string): string {
  const full = `${tool}__${action}`;
  if (full.length <= MAX_TOOL_NAME) return full;
  return `${full.slice(0, MAX_TOOL_NAME - 9)}_${createHash("sha256").update(full).digest("hex").slice(0, 8)}`;
}
