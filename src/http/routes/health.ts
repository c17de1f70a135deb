import type { FastifyInstance } from "fastify";

export interface HealthDeps {
  /** Throws when the store cannot be reached. */
  checkStore: () => Promise<void>;
  describe: () => Record<string, unknown>;
}

/** Liveness (`/health`) and readiness (`/ready`: the store answers). */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps) {
  app.get("/health", async () => ({ status: "ok", ...deps.describe() }));

  app.get("/ready", async (_request, reply) => {
    const started = performance.now();
    try {
      await deps.checkStore();
      return { status: "ready", checks: { store: { status: "up", latencyMs: Math.round((performance.now() - started) * 100) / 100 } } };
    } catch {
      reply.code(503);
      return { status: "unavailable", checks: { store: { status: "down" } } };
    }
  });
}
