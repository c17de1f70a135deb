import type { FastifyInstance, FastifyRequest } from "fastify";
import { PRINTABLE_ID } from "../schemas.js";
import { GatewayError } from "../../errors/index.js";
import type { IdentityService } from "../../identity/index.js";
import type { Counters } from "../../limits/counters.js";
import { evaluate } from "../../policy/evaluate.js";
import type { PolicyService } from "../../policy/service.js";

const idParams = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 64 } } } as const;

function formatOf(request: FastifyRequest): "json" | "yaml" {
  return /yaml/i.test(request.headers["content-type"] ?? "") ? "yaml" : "json";
}

/** Admin routes for policies, and `explain`, which decides a call without making it or counting it. */
export function registerPolicyRoutes(
  app: FastifyInstance,
  deps: { policies: PolicyService; identity: IdentityService; counters: Counters; now: () => number; countFailedCalls: boolean },
) {
  // Policies may be sent as YAML; the body stays text and the policy parser names any bad field.
  app.addContentTypeParser(["application/yaml", "application/x-yaml", "text/yaml"], { parseAs: "string" }, (_req, body, done) => done(null, body));

  app.post("/api/policies", { config: { role: "admin" } }, async (request, reply) => {
    reply.code(201);
    return deps.policies.create(request.body, formatOf(request));
  });
  app.get("/api/policies", { config: { role: "viewer" } }, async () => ({ policies: deps.policies.list() }));
  app.get("/api/policies/:id", { config: { role: "viewer" }, schema: { params: idParams } }, async (request) =>
    deps.policies.get((request.params as { id: string }).id),
  );
  app.put("/api/policies/:id", { config: { role: "admin" }, schema: { params: idParams } }, async (request) =>
    deps.policies.replace((request.params as { id: string }).id, request.body, formatOf(request)),
  );
  app.patch("/api/policies/:id", { config: { role: "admin" }, schema: { params: idParams, body: { type: "object" } } }, async (request) =>
    deps.policies.patch((request.params as { id: string }).id, request.body),
  );
  app.delete("/api/policies/:id", { config: { role: "admin" }, schema: { params: idParams } }, async (request, reply) => {
    await deps.policies.remove((request.params as { id: string }).id);
    reply.code(204);
    return null;
  });

  app.post(
    "/api/policies/explain",
    {
      // A dry run: it decides a call without making or counting it, so viewers may use it.
      config: { role: "viewer", readOnly: true },
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["tool", "action"],
          properties: {
            agentId: { type: "string", minLength: 1, maxLength: 64, pattern: PRINTABLE_ID },
            token: { type: "string", minLength: 1, maxLength: 8192 },
            tool: { type: "string", minLength: 1, maxLength: 64 },
            action: { type: "string", minLength: 1, maxLength: 64 },
            params: { type: "object" },
            intent: { type: "string", maxLength: 128 },
            scopes: { type: "array", items: { type: "string", maxLength: 130 }, maxItems: 200 },
          },
        },
      },
    },
    async (request) => {
      const body = request.body as {
        agentId?: string;
        token?: string;
        tool: string;
        action: string;
        params?: Record<string, unknown>;
        intent?: string;
        scopes?: string[];
      };
      let agent: { id: string; role: string; status?: "active" | "suspended" };
      let token: { scopes: string[]; intent?: string | undefined };
      if (body.token !== undefined) {
        const verified = await deps.identity.verifyAccessToken(body.token);
        agent = { id: verified.agentId, role: verified.role };
        token = { scopes: verified.scopes, intent: verified.intent };
      } else if (body.agentId !== undefined) {
        const found = await deps.identity.getAgent(body.agentId);
        agent = { id: found.id, role: found.role, status: found.status };
        // Without a token, the policy alone is explained unless the caller names the token's scopes.
        token = { scopes: body.scopes ?? ["*"], intent: body.intent };
      } else {
        throw new GatewayError("invalid_request", "name the caller: give agentId (and optionally scopes and intent) or a token");
      }
      const now = deps.now();
      const policies = deps.policies.applicable(agent.id, agent.role);
      const decision = evaluate({
        agent,
        token,
        call: { tool: body.tool, action: body.action, params: body.params ?? {} },
        policies,
        now,
        explain: true,
        countFailedCalls: deps.countFailedCalls,
      });
      const base = {
        agentId: agent.id,
        role: agent.role,
        tool: body.tool,
        action: body.action,
        policies: policies.map((p) => ({ id: p.id, name: p.document.name, version: p.version, hash: p.hash })),
        trace: decision.trace,
      };
      if (!decision.allow)
        return { decision: "deny", reason: decision.reason, message: decision.message, ...(decision.rule ? { rule: decision.rule } : {}), ...base };
      const remaining = await deps.counters.peek(decision.limits, now);
      const limits = decision.limits.map((l, i) => ({
        kind: l.kind,
        limit: l.limit,
        remaining: remaining[i],
        ...(l.perSecond === undefined ? {} : { perSecond: l.perSecond }),
        ...(l.windowEndMs === undefined ? {} : { resetsAt: new Date(l.windowEndMs).toISOString() }),
        rule: l.ref,
      }));
      const exhausted = limits.find((l) => (l.remaining ?? 1) < 1);
      if (exhausted) {
        return {
          decision: "deny",
          reason: exhausted.kind === "quota" ? "quota_exceeded" : "rate_limited",
          message: `the ${exhausted.kind === "quota" ? "quota" : "rate limit"} of policy "${exhausted.rule.policyName}" is used up right now`,
          rule: exhausted.rule,
          limits,
          ...base,
        };
      }
      // A call policy allows only with a person's approval: which rule asks, for how long, and who should decide.
      if (decision.approval !== undefined)
        return { decision: "approval_required", approval: decision.approval, message: decision.approval.reason, limits, ...base };
      return { decision: "allow", limits, ...base };
    },
  );
}
