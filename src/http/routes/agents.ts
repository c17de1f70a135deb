import type { FastifyInstance } from "fastify";
import { ADMIN_ONLY } from "../auth.js";
import type { IdentityService } from "../../identity/index.js";
import type { AgentRecord } from "../../store/index.js";

const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", minLength: 1, maxLength: 128 } },
} as const;

const pageQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    limit: { type: "string", pattern: "^(?:[1-9]\\d{0,2}|1000)$" },
    offset: { type: "string", pattern: "^\\d{1,9}$" },
  },
} as const;

/** The public view of an agent. */
export function agentView(agent: AgentRecord) {
  return {
    id: agent.id,
    name: agent.name,
    role: agent.role,
    status: agent.status,
    keyAlgorithm: agent.keyAlgorithm,
    publicKey: agent.publicKeyJwk,
    createdAt: new Date(agent.createdAt).toISOString(),
    updatedAt: new Date(agent.updatedAt).toISOString(),
  };
}

/** Admin routes to register, list, suspend and re-activate agents. */
export function registerAgentRoutes(app: FastifyInstance, deps: { identity: IdentityService }) {
  const { identity } = deps;

  app.post(
    "/api/agents",
    {
      config: ADMIN_ONLY,
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name", "role"],
          properties: {
            name: { type: "string", minLength: 1, maxLength: 64 },
            role: { type: "string", minLength: 1, maxLength: 64 },
            publicKey: { anyOf: [{ type: "string", minLength: 1, maxLength: 16384 }, { type: "object" }] },
            keyAlgorithm: { type: "string", enum: ["EdDSA", "ES256", "RS256"] },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { name: string; role: string; publicKey?: unknown; keyAlgorithm?: "EdDSA" | "ES256" | "RS256" };
      const created = await identity.createAgent(body);
      reply.code(201);
      if (created.privateKeyPem === undefined) return agentView(created.agent);
      reply.header("cache-control", "no-store");
      return {
        ...agentView(created.agent),
        privateKey: created.privateKeyPem,
        warning: "This private key is shown once and is not stored by the gateway. Keep it secret.",
      };
    },
  );

  app.get("/api/agents", { config: ADMIN_ONLY, schema: { querystring: pageQuery } }, async (request) => {
    const q = request.query as { limit?: string; offset?: string };
    const limit = Number(q.limit ?? 100);
    const offset = Number(q.offset ?? 0);
    const agents = await identity.listAgents({ limit, offset });
    return { agents: agents.map(agentView), limit, offset };
  });

  app.get("/api/agents/:id", { config: ADMIN_ONLY, schema: { params: idParams } }, async (request) => {
    return agentView(await identity.getAgent((request.params as { id: string }).id));
  });

  app.post("/api/agents/:id/suspend", { config: ADMIN_ONLY, schema: { params: idParams } }, async (request) => {
    return agentView(await identity.setAgentStatus((request.params as { id: string }).id, "suspended"));
  });

  app.post("/api/agents/:id/activate", { config: ADMIN_ONLY, schema: { params: idParams } }, async (request) => {
    return agentView(await identity.setAgentStatus((request.params as { id: string }).id, "active"));
  });

  app.post("/api/agents/:id/revoke-tokens", { config: ADMIN_ONLY, schema: { params: idParams } }, async (request) => {
    const id = (request.params as { id: string }).id;
    return { agentId: id, revoked: await identity.revokeAgentTokens(id) };
  });
}
