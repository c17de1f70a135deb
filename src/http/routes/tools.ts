import type { FastifyInstance } from "fastify";
import { AGENT_OR_ADMIN } from "../auth.js";
import { GatewayError } from "../../errors/index.js";
import { scopeCovers, type VerifiedToken } from "../../identity/index.js";
import { evaluate } from "../../policy/evaluate.js";
import type { PolicyService } from "../../policy/service.js";
import type { Toolbox } from "../../tools/index.js";
import { mcpToolName } from "../../mcp/tool-names.js";

export interface ToolRouteDeps {
  toolbox: Toolbox;
  /** Undefined when policy enforcement is off (FF_POLICY=off): the token's scopes alone decide. */
  policies: PolicyService | undefined;
  now: () => number;
}

/**
 * Refusals that hold whatever the call's parameters and time: the token lacks the scope, policy
 * grants nothing for it (or a deny rule covers it), or the token's intent is not one it needs.
 * Guards, schedules and limits depend on the call, so such actions are still listed.
 */
const NEVER_CALLABLE = new Set(["scope_denied", "intent_required", "agent_suspended"]);

/** Whether the token's agent could call `tool:action` at all, as far as scopes and policy tell. */
function mayCall(deps: ToolRouteDeps, token: VerifiedToken, tool: string, action: string): boolean {
  if (deps.policies === undefined) return token.scopes.some((s) => scopeCovers(s, tool, action));
  const decision = evaluate({
    agent: { id: token.agentId, role: token.role },
    token: { scopes: token.scopes, intent: token.intent },
    call: { tool, action, params: {} },
    policies: deps.policies.applicable(token.agentId, token.role),
    now: deps.now(),
  });
  return decision.allow || !NEVER_CALLABLE.has(decision.reason);
}

/** `GET /api/tools` (what the caller may call) and the admin routes for generic HTTP tools. */
export function registerToolRoutes(app: FastifyInstance, deps: ToolRouteDeps) {
  const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } } } as const;

  // The admin sees the whole catalog; an agent the actions its token and policies let it call.
  app.get("/api/tools", { config: AGENT_OR_ADMIN }, async (request) => {
    const all = deps.toolbox.catalog.list().map((a) => ({ ...a, mcpName: mcpToolName(a.tool, a.action) }));
    const caller = request.caller;
    if (caller?.role === "admin") return { tools: all };
    if (caller?.role !== "agent") throw new Error("GET /api/tools ran without an authenticated caller");
    return { tools: all.filter((a) => mayCall(deps, caller.token, a.tool, a.action)) };
  });

  // The body is validated by the toolbox, so a bad field is named with its full path.
  app.post("/api/tools", { config: { role: "admin" }, schema: { body: { type: "object" } } }, async (request, reply) => {
    const def = await deps.toolbox.defineGeneric(request.body);
    reply.code(201);
    return {
      tool: def,
      actions: deps.toolbox.catalog
        .list()
        .filter((a) => a.tool === def.name)
        .map((a) => a.action),
    };
  });

  app.get("/api/tools/generic", { config: { role: "viewer" } }, async () => ({ tools: deps.toolbox.listGeneric() }));

  app.delete("/api/tools/:name", { config: { role: "admin" }, schema: { params: nameParams } }, async (request, reply) => {
    const { name } = request.params as { name: string };
    if (!(await deps.toolbox.removeGeneric(name))) throw new GatewayError("not_found", `no generic tool named "${name}" (built-in tools cannot be removed)`);
    reply.code(204);
    return null;
  });
}
