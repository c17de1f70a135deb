import type { FastifyInstance } from "fastify";
import { GatewayError } from "../../errors/index.js";
import { mcpToolName } from "../../mcp/tool-names.js";
import type { McpServerView, McpUpstreams } from "../../mcp/upstream.js";

/** Admin routes for upstream MCP servers whose tools the gateway fronts. */
export function registerMcpServerRoutes(app: FastifyInstance, deps: { upstreams: McpUpstreams }) {
  const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } } } as const;

  // The body is validated by the registry, so a bad field is named with its full path.
  app.post("/api/mcp-servers", { config: { role: "admin" }, schema: { body: { type: "object" } } }, async (request, reply) => {
    reply.code(201);
    return view(await deps.upstreams.define(request.body));
  });

  app.get("/api/mcp-servers", { config: { role: "viewer" } }, async () => ({ servers: deps.upstreams.list().map(view) }));

  app.get("/api/mcp-servers/:name", { config: { role: "viewer" }, schema: { params: nameParams } }, async (request) =>
    view(deps.upstreams.get((request.params as { name: string }).name)),
  );

  app.post("/api/mcp-servers/:name/refresh", { config: { role: "admin" }, schema: { params: nameParams } }, async (request) =>
    view(await deps.upstreams.refresh((request.params as { name: string }).name)),
  );

  app.delete("/api/mcp-servers/:name", { config: { role: "admin" }, schema: { params: nameParams } }, async (request, reply) => {
    const { name } = request.params as { name: string };
    if (!(await deps.upstreams.remove(name))) throw new GatewayError("not_found", `no MCP server named "${name}"`);
    reply.code(204);
    return null;
  });
}

function view(s: McpServerView) {
  return {
    server: s.definition,
    discoveredAt: new Date(s.discoveredAt).toISOString(),
    tools: s.tools.map((t) => ({
      name: t.name,
      scope: `${s.definition.name}:${t.action}`,
      mcpName: mcpToolName(s.definition.name, t.action),
      description: t.description ?? null,
    })),
  };
}
