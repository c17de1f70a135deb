import { covers } from "./evaluate.js";
import type { Policy, Rule } from "./types.js";

/** What listing needs to know of a token: never its parameters, which do not exist yet. */
export interface ListingSubject {
  scopes: readonly string[];
  intent: string | undefined;
}

/**
 * Whether an agent may see a tool action in a listing (MCP `tools/list`): deny by default, like
 * `evaluate`, but judged without parameters or counters. Shown only when the token's scopes cover
 * it, no deny rule that needs no parameters or clock covers it, some plain allow rule grants it,
 * and every allow rule's intent condition is met by the token. Guards, schedules, quotas and rate
 * limits depend on the call and the moment, so they are judged when the tool is called. Pure.
 */
export function visibleTo(subject: ListingSubject, policies: readonly Policy[], tool: string, action: string): boolean {
  if (!subject.scopes.some((s) => covers(s, tool, action))) return false;
  let granted = false;
  for (const policy of policies) {
    if (policy.document.enabled === false) continue;
    for (const rule of policy.document.rules) {
      if (!rule.scopes.some((s) => covers(s, tool, action))) continue;
      const intentMet = rule.intents === undefined || (subject.intent !== undefined && rule.intents.includes(subject.intent));
      if (rule.effect === "deny") {
        // A deny rule that only an argument or the clock can trigger is judged at call time.
        if (intentMet && rule.guards === undefined && rule.schedule === undefined) return false;
        continue;
      }
      if (!intentMet) return false;
      if (!isConstrained(rule)) granted = true;
    }
  }
  return granted;
}

const isConstrained = (r: Rule) =>
  r.intents !== undefined || r.guards !== undefined || r.quota !== undefined || r.schedule !== undefined || r.rateLimit !== undefined;
