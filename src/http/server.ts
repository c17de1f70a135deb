import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { GatewayError } from "../errors/index.js";
import { sendError, toGatewayError } from "./errors.js";

const CORRELATION_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export interface HttpServerOptions {
  logger: Logger;
  bodyLimitBytes: number;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Fields the one per-request log line carries (agent, tool, action, decision). */
    logFields: Record<string, unknown>;
  }
}

/**
 * The Fastify instance with the cross-cutting parts every route shares: correlation ids,
 * the one error shape, a body-size limit, 404s in the same shape, and one log line per request.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // One line per request is written by the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const sent = req.headers["x-correlation-id"];
      return typeof sent === "string" && CORRELATION_ID.test(sent) ? sent : randomUUID();
    },
    forceCloseConnections: "idle",
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  app.decorateRequest("logFields", null as never);
  app.addHook("onRequest", async (request, reply) => {
    request.logFields = {};
    reply.header("x-correlation-id", request.id);
  });

  app.setErrorHandler((err, request, reply) => {
    const error = toGatewayError(err);
    if (error.code === "internal_error") {
      request.log.error({ err: error.cause, correlationId: request.id }, "unhandled error");
    }
    request.logFields.errorCode = error.code;
    return sendError(request, reply, error);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new GatewayError("not_found", `no route ${request.method} ${request.url.split("?")[0]?.slice(0, 200)}`)),
  );

  app.addHook("onResponse", async (request, reply) => {
    request.log.info(
      {
        correlationId: request.id,
        method: request.method,
        route: routeOf(request),
        status: reply.statusCode,
        latencyMs: Math.round(reply.elapsedTime * 1000) / 1000,
        ...request.logFields,
      },
      "request",
    );
  });

  return app;
}

/** The route pattern (bounded), never the raw URL with its ids and query. */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? "unmatched";
}
