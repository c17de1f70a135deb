import type { FastifyInstance } from "fastify";
import { GatewayError } from "../../errors/index.js";
import type { Toolbox } from "../../tools/index.js";

/** Admin routes for generic HTTP tools defined by configuration. */
export function registerToolAdminRoutes(app: FastifyInstance, deps: { toolbox: Toolbox }) {
  const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } } } as const;

  // The body is validated by the toolbox, so a bad field is named with its full path.
  app.post("/api/tools", { config: { role: "admin" }, schema: { body: { type: "object" } } }, async (request, reply) => {
    const def = await deps.toolbox.defineGeneric(request.body);
    reply.code(201);
    return { tool: def, actions: deps.toolbox.catalog.list().filter((a) => a.tool === def.name).map((a) => a.action) };
  });

  app.get("/api/tools/generic", { config: { role: "viewer" } }, async () => ({ tools: deps.toolbox.listGeneric() }));

  app.delete("/api/tools/:name", { config: { role: "admin" }, schema: { params: nameParams } }, async (request, reply) => {
    const { name } = request.params as { name: string };
    if (!(await deps.toolbox.removeGeneric(name))) throw new GatewayError("not_found", `no generic tool named "${name}" (built-in tools cannot be removed)`);
    reply.code(204);
    return null;
  });
}
