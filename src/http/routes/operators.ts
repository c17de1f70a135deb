import type { FastifyInstance } from "fastify";
import { OPERATOR_ROLES, type OperatorRecord, type OperatorService } from "../../operators/index.js";

const idParams = { type: "object", required: ["id"], properties: { id: { type: "string", minLength: 1, maxLength: 64 } } } as const;

/** The public view of an operator: never its key or the key's hash. */
export function operatorView(o: OperatorRecord) {
  return {
    id: o.id,
    name: o.name,
    role: o.role,
    status: o.status,
    createdAt: new Date(o.createdAt).toISOString(),
    updatedAt: new Date(o.updatedAt).toISOString(),
    keyRotatedAt: new Date(o.keyRotatedAt).toISOString(),
  };
}

const KEY_WARNING = "This key is shown once and only its hash is stored. Keep it secret.";

/** Named operators with a role: create (the key is shown once), list, disable, enable, rotate the key. */
export function registerOperatorRoutes(app: FastifyInstance, deps: { operators: OperatorService }) {
  const { operators } = deps;

  app.post(
    "/api/operators",
    {
      config: { role: "admin" },
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name", "role"],
          properties: { name: { type: "string", minLength: 1, maxLength: 64 }, role: { type: "string", enum: [...OPERATOR_ROLES] } },
        },
      },
    },
    async (request, reply) => {
      const created = await operators.create(request.body as { name: string; role: string });
      reply.code(201).header("cache-control", "no-store");
      return { ...operatorView(created.operator), key: created.key, warning: KEY_WARNING };
    },
  );

  app.get("/api/operators", { config: { role: "viewer" } }, async () => ({ operators: (await operators.list()).map(operatorView) }));

  app.post("/api/operators/:id/disable", { config: { role: "admin" }, schema: { params: idParams } }, async (request) =>
    operatorView(await operators.setStatus((request.params as { id: string }).id, "disabled")),
  );

  app.post("/api/operators/:id/enable", { config: { role: "admin" }, schema: { params: idParams } }, async (request) =>
    operatorView(await operators.setStatus((request.params as { id: string }).id, "active")),
  );

  /** Who is signed in to the console right now; the caller's own session is marked. */
  app.get("/api/operators/sessions", { config: { role: "viewer" } }, async (request) => {
    const own = request.operator?.session === undefined ? undefined : operators.handleOf(request.operator.session.id);
    return {
      sessions: (await operators.listSessions()).map((s) => ({
        handle: s.handle,
        operator: s.operator,
        createdAt: new Date(s.createdAt).toISOString(),
        lastSeenAt: new Date(s.lastSeenAt).toISOString(),
        expiresAt: new Date(s.expiresAt).toISOString(),
        current: s.handle === own,
      })),
    };
  });

  app.delete(
    "/api/operators/sessions/:handle",
    {
      config: { role: "admin" },
      schema: { params: { type: "object", required: ["handle"], properties: { handle: { type: "string", minLength: 1, maxLength: 64 } } } },
    },
    async (request, reply) => {
      await operators.endSession((request.params as { handle: string }).handle);
      reply.code(204);
      return null;
    },
  );

  app.post("/api/operators/:id/rotate", { config: { role: "admin" }, schema: { params: idParams } }, async (request, reply) => {
    const rotated = await operators.rotateKey((request.params as { id: string }).id);
    reply.header("cache-control", "no-store");
    return { ...operatorView(rotated.operator), key: rotated.key, warning: KEY_WARNING };
  });
}
