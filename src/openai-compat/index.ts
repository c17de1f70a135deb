/**
 * The OpenAI-compatible door's pure parts: the error shape the official clients parse, which of the
 * upstream's models policy lets an agent chat with. The route is in src/http/routes/openai-compat.ts;
 * the calls themselves run the same road as every other door (door "openai").
 */
import type { GatewayError } from "../errors/index.js";
import { scopeCovers, type VerifiedToken } from "../identity/index.js";
import { evaluate } from "../policy/evaluate.js";
import type { PolicyService } from "../policy/service.js";

/** OpenAI's error types by status: the official clients raise their typed errors from the status. */
function typeOf(status: number): string {
  if (status === 400 || status === 413 || status === 415 || status === 404 || status === 409 || status === 422) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  return "api_error";
}

/** Refusals a client repeating the same request could get past: everything else is final (quota, policy, bad input). */
const WORTH_RETRYING = new Set(["rate_limited", "circuit_open", "upstream_error", "upstream_timeout", "service_unavailable", "idempotency_in_flight"]);

export interface OpenAIErrorAnswer {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string; correlation_id: string } };
  headers: Record<string, string>;
}

/**
 * The gateway's error in OpenAI's shape, the gateway code in `code`. `x-should-retry` tells the
 * official clients (which otherwise retry every 429 and 5xx) whether repeating can help: the gateway
 * already retried the upstream, and a quota or a policy denial will not change in a second.
 */
export function openAIError(error: GatewayError, correlationId: string): OpenAIErrorAnswer {
  const field = error.details?.field ?? (Array.isArray(error.details?.issues) ? (error.details.issues[0] as { path?: string } | undefined)?.path : undefined);
  const headers: Record<string, string> = { "x-should-retry": WORTH_RETRYING.has(error.code) ? "true" : "false" };
  if (error.retryAfterSeconds !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
  return {
    status: error.status,
    headers,
    body: {
      error: {
        message: error.message,
        type: typeOf(error.status),
        param: typeof field === "string" ? field : null,
        code: error.code,
        correlation_id: correlationId,
      },
    },
  };
}

/** The upstream's model list (OpenAI's `{object: "list", data}`), cut to the models `mayChat` allows. */
export function allowedModels(upstream: unknown, mayChat: (model: string) => boolean): { object: "list"; data: { id: string }[] } {
  const data = (upstream as { data?: unknown } | null)?.data;
  const models = Array.isArray(data) ? data.filter((m): m is { id: string } => typeof (m as { id?: unknown })?.id === "string") : [];
  return { object: "list", data: models.filter((m) => mayChat(m.id)) };
}

/**
 * Whether policy would let this token's agent chat with `model` now (scopes, rules and guards on
 * `model`; quotas and rate limits are judged when the call is made). With policy enforcement off,
 * the token's scopes alone decide.
 */
export function chatPermission(o: { policies: Pick<PolicyService, "applicable">; enforced: boolean; now: () => number }) {
  return (token: VerifiedToken, model: string): boolean => {
    if (!token.scopes.some((s) => scopeCovers(s, "openai", "chat"))) return false;
    if (!o.enforced) return true;
    const call = { tool: "openai", action: "chat", params: { model, messages: [{ role: "user", content: "" }] } };
    return evaluate({
      agent: { id: token.agentId, role: token.role },
      token: { scopes: token.scopes, intent: token.intent },
      call,
      policies: o.policies.applicable(token.agentId, token.role),
      now: o.now(),
    }).allow;
  };
}
