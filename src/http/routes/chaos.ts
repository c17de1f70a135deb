import type { FastifyInstance } from "fastify";
import { ADMIN_ONLY } from "../auth.js";
import { GatewayError } from "../../errors/index.js";
import { parseChaosSettings, type ChaosController } from "../../resilience/chaos.js";

const toolParams = { type: "object", properties: { tool: { type: "string", pattern: "^([a-z0-9][a-z0-9_-]{0,63}|\\*)$" } } } as const;

/** Fault injection at the upstream boundary: `GET|PUT|DELETE /api/admin/chaos[/:tool]`. */
export function registerChaosRoutes(app: FastifyInstance, deps: { chaos: ChaosController; onChange?: () => void }) {
  const view = () => ({ active: deps.chaos.active(), tools: deps.chaos.describe() });

  app.get("/api/admin/chaos", { config: ADMIN_ONLY }, async () => view());

  app.put("/api/admin/chaos", { config: ADMIN_ONLY, schema: { body: { type: "object" } } }, async (request) => {
    const body = request.body as Record<string, unknown>;
    // Validate everything first: nothing is half-applied.
    const parsed = Object.entries(body).map(([tool, settings]) => {
      if (!/^([a-z0-9][a-z0-9_-]{0,63}|\*)$/.test(tool)) throw new GatewayError("invalid_request", `"${tool.slice(0, 64)}" is not a tool name (or *)`);
      return [tool, parseChaosSettings(settings, tool)] as const;
    });
    deps.chaos.clear();
    for (const [tool, settings] of parsed) deps.chaos.set(tool, settings);
    deps.onChange?.();
    return view();
  });

  app.put("/api/admin/chaos/:tool", { config: ADMIN_ONLY, schema: { params: toolParams, body: { type: "object" } } }, async (request) => {
    deps.chaos.set((request.params as { tool: string }).tool, parseChaosSettings(request.body, "body"));
    deps.onChange?.();
    return view();
  });

  app.delete("/api/admin/chaos", { config: ADMIN_ONLY }, async () => {
    deps.chaos.clear();
    deps.onChange?.();
    return view();
  });

  app.delete("/api/admin/chaos/:tool", { config: ADMIN_ONLY, schema: { params: toolParams } }, async (request) => {
    deps.chaos.clear((request.params as { tool: string }).tool);
    deps.onChange?.();
    return view();
  });
}
