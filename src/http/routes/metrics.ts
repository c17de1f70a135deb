import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GatewayError } from "../../errors/index.js";
import type { GatewayMetrics } from "../../obs/metrics.js";
import { bearerOf } from "../auth.js";

/** `GET /metrics` in Prometheus text format, optionally behind `Authorization: Bearer <METRICS_TOKEN>`. */
export function registerMetricsRoute(app: FastifyInstance, deps: { metrics: GatewayMetrics; token: string | undefined }) {
  const expected = deps.token === undefined ? undefined : createHash("sha256").update(deps.token).digest();
  app.get("/metrics", async (request: FastifyRequest, reply: FastifyReply) => {
    if (expected !== undefined) {
      const given = createHash("sha256")
        .update(bearerOf(request) ?? "")
        .digest();
      if (!timingSafeEqual(expected, given)) throw new GatewayError("admin_unauthorized", "/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'");
    }
    reply.header("content-type", deps.metrics.contentType);
    return deps.metrics.text();
  });
}
