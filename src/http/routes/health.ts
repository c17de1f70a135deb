import type { FastifyInstance } from "fastify";

export interface DependencyCheck {
  name: string;
  /** Throws (or rejects) when the dependency cannot be reached. */
  check: () => Promise<void>;
}

export interface HealthDeps {
  checks: DependencyCheck[];
  describe: () => Record<string, unknown>;
  /** True once shutdown began: readiness fails so load balancers drain this instance. */
  isClosing: () => boolean;
}

/**
 * Liveness (`/health`) and readiness (`/ready`). A dependency that is down makes the gateway
 * `degraded`, not unready: it keeps serving known agents and policies from memory, and taking every
 * instance out of a load balancer because the shared database blinked would turn a partial outage
 * into a total one. `/ready?strict=true` answers 503 when anything is down, for those who want that.
 */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps) {
  app.get("/health", async () => ({ status: "ok", ...deps.describe() }));

  app.get(
    "/ready",
    { schema: { querystring: { type: "object", properties: { strict: { type: "string", enum: ["true", "false", "1", "0"] } } } } },
    async (request, reply) => {
      const checks: Record<string, { status: "up" | "down"; latencyMs?: number; error?: string }> = {};
      await Promise.all(
        deps.checks.map(async ({ name, check }) => {
          const started = performance.now();
          try {
            await Promise.race([check(), new Promise((_, reject) => setTimeout(() => reject(new Error("timed out after 2 s")), 2000).unref())]);
            checks[name] = { status: "up", latencyMs: Math.round((performance.now() - started) * 100) / 100 };
          } catch (err) {
            checks[name] = { status: "down", error: (err as Error).message.slice(0, 200) };
          }
        }),
      );
      const anyDown = Object.values(checks).some((c) => c.status === "down");
      const strict = ["true", "1"].includes((request.query as { strict?: string }).strict ?? "");
      if (deps.isClosing()) {
        reply.code(503);
        return { status: "shutting_down", checks };
      }
      if (anyDown && strict) reply.code(503);
      return { status: anyDown ? "degraded" : "ready", checks };
    },
  );
}
