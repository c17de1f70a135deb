import type { FastifyInstance, FastifyRequest } from "fastify";
import { APPROVAL_STATUSES, type ApprovalService, type ApprovalStatus } from "../../approvals/index.js";
import { GatewayError } from "../../errors/index.js";
import { AGENT_OR_ADMIN, agentTokenOf } from "../auth.js";
import { roleAllows } from "../../operators/index.js";
import { PRINTABLE_ID } from "../schemas.js";

const ID_PARAMS = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 64, pattern: PRINTABLE_ID } } } as const;
const DECISION_BODY_MAX = 500;

/**
 * Who may do what with approvals, in one place. Each route declares who the authentication hook
 * admits: any operator (viewer and up) lists and reads; the agent that asked may read its own; an
 * operator with role `approver` or `admin` decides (the bootstrap admin key is `bootstrap-admin`),
 * recorded by name as `decidedBy`. The decision routes also admit agent tokens so that an agent is
 * told 403 (it proved who it is, and it is not allowed), never given a decision; so they check the
 * role in `decider` (same refusal and details as the operator hook) instead of `config: { role }`.
 * test/operators/operators.e2e.test.ts walks them × role like every role route.
 */
const PEOPLE = { role: "viewer" } as const;
const PEOPLE_OR_THE_ASKING_AGENT = AGENT_OR_ADMIN;
const DECIDERS = AGENT_OR_ADMIN;

/** The person deciding (recorded as `decidedBy`). @throws GatewayError operator_forbidden for an agent */
function decider(request: FastifyRequest): string {
  const operator = request.operator;
  if (request.caller?.role === "admin" && operator !== null) {
    if (roleAllows(operator.role, "approver")) return operator.name;
    throw new GatewayError("operator_forbidden", `operator "${operator.name}" is a ${operator.role}; deciding approvals needs an approver`, {
      details: { role: operator.role, needed: "approver" },
    });
  }
  throw new GatewayError("operator_forbidden", "an agent cannot decide approvals: an operator (approver or admin) must");
}

/** `GET /api/approvals`, `GET /api/approvals/:id`, `POST /api/approvals/:id/approve|deny`. */
export function registerApprovalRoutes(app: FastifyInstance, deps: { approvals: ApprovalService }) {
  app.get(
    "/api/approvals",
    {
      config: PEOPLE,
      schema: {
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            status: { type: "string", enum: [...APPROVAL_STATUSES] },
            agentId: { type: "string", minLength: 1, maxLength: 64, pattern: PRINTABLE_ID },
            tool: { type: "string", minLength: 1, maxLength: 64, pattern: PRINTABLE_ID },
            limit: { type: "string", pattern: "^[0-9]{1,4}$" },
            cursor: { type: "string", minLength: 1, maxLength: 200, pattern: PRINTABLE_ID },
          },
        },
      },
    },
    async (request) => {
      const q = request.query as { status?: ApprovalStatus; agentId?: string; tool?: string; limit?: string; cursor?: string };
      const limit = q.limit === undefined ? 50 : Number(q.limit);
      if (limit < 1 || limit > 500) throw new GatewayError("invalid_request", "limit must be between 1 and 500", { details: { field: "limit" } });
      return deps.approvals.list({
        limit,
        ...(q.status ? { status: q.status } : {}),
        ...(q.agentId ? { agentId: q.agentId } : {}),
        ...(q.tool ? { tool: q.tool } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
    },
  );

  app.get("/api/approvals/:id", { config: PEOPLE_OR_THE_ASKING_AGENT, schema: { params: ID_PARAMS } }, async (request) => {
    // A person sees every approval; an agent only its own (someone else's reads as not found).
    const agentId = request.caller?.role === "admin" ? undefined : agentTokenOf(request).agentId;
    return deps.approvals.get((request.params as { id: string }).id, agentId);
  });

  for (const decision of ["approve", "deny"] as const) {
    app.post(`/api/approvals/:id/${decision}`, { config: DECIDERS, schema: { params: ID_PARAMS } }, async (request) => {
      const by = decider(request);
      // The body may be absent; when present it holds only the reason: nothing about the call can be changed here.
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (typeof body !== "object" || Array.isArray(body) || Object.keys(body).some((k) => k !== "reason")) {
        throw new GatewayError("invalid_request", "the body may only hold a reason: the approved call is the stored one", {
          details: { field: Object.keys(body).find((k) => k !== "reason") ?? "(body)" },
        });
      }
      if (body.reason !== undefined && (typeof body.reason !== "string" || body.reason.length > DECISION_BODY_MAX)) {
        throw new GatewayError("invalid_request", `reason must be a string of at most ${DECISION_BODY_MAX} characters`, { details: { field: "reason" } });
      }
      request.logFields.approvalDecision = decision;
      return deps.approvals.decide((request.params as { id: string }).id, decision, by, body.reason);
    });
  }
}
