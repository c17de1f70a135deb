import { randomUUID } from "node:crypto";
import { timeOrderedUuid } from "../util/time-ordered-id.js";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { GatewayError } from "../errors/index.js";
import type { PreAuthLimiter } from "../limits/pre-auth.js";
import { installRouteAuth, type RouteAuthDeps } from "./auth.js";
import { installPreAuthLimits } from "./pre-auth-limits.js";
import { clientErrorResponder, fromFrameworkError, refuseControlCharacters, sendError, toGatewayError } from "./errors.js";

const CORRELATION_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Longest path parameter the router passes on. Well above every path schema's maxLength (128), even
 * percent-encoded, so the schema decides and names the field; beyond it the router's 414 answers.
 */
export const MAX_PATH_PARAM_CHARS = 1024;

export interface HttpServerOptions {
  logger: Logger;
  bodyLimitBytes: number;
  /** Credentials for routes that declare `config: { auth: [...] }`. */
  auth: RouteAuthDeps;
  /** Limits for callers not yet authenticated (token requests, calls without a credential). */
  preAuthLimiter?: PreAuthLimiter;
  /**
   * Longest time a client may take to send a whole request. Fastify turns Node's limit off by
   * default, which lets a client that sends a byte a minute hold a connection for ever.
   */
  requestTimeoutMs: number;
  /** Fastify's `trustProxy`: whose X-Forwarded-For to believe for the client address (default: nobody's). */
  trustProxy?: boolean | number | string[];
  /** True once a graceful stop began: new requests are refused (503 in the one error shape) while those in flight finish. */
  isClosing?: () => boolean;
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
    // Not redundant, whatever the rule says: without it Fastify infers pino's Logger as the instance's logger type.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: options.logger as FastifyBaseLogger,
    // One line per request is written by the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    requestIdHeader: false,
    genReqId: (req) => {
      const sent = req.headers["x-correlation-id"];
      // Time-ordered, so the audit log's index on correlation ids grows at its edge.
      return typeof sent === "string" && CORRELATION_ID.test(sent) ? sent : timeOrderedUuid();
    },
    forceCloseConnections: "idle",
    // Fastify's own 503 is not in the error shape: the onRequest hook below refuses instead.
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    trustProxy: typeof options.trustProxy === "number" ? trustHops(options.trustProxy) : (options.trustProxy ?? false),
    routerOptions: { maxParamLength: MAX_PATH_PARAM_CHARS },
    requestTimeout: options.requestTimeoutMs,
    http: {
      headersTimeout: Math.min(options.requestTimeoutMs, 60_000),
      // How often Node looks for requests past their time: often enough for the limit to mean something.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(options.requestTimeoutMs / 4))),
    },
    // The router's own refusals (bad percent-encoding, a parameter too long) in the one error shape.
    // The reply handed back is Fastify's thenable reply, not a lost promise.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    frameworkErrors: (err, request, reply) => {
      reply.header("x-correlation-id", request.id);
      return sendError(request, reply, fromFrameworkError(err));
    },
    // Node's parser refusals (header overflow, bare CR, CL+TE, bad method) likewise, on the raw socket.
    clientErrorHandler: clientErrorResponder(randomUUID, (fields) => options.logger.info(fields, "malformed request refused by the HTTP parser")),
  });

  app.decorateRequest("logFields", null as never);
  app.addHook("onRequest", async (request, reply) => {
    request.logFields = {};
    reply.header("x-correlation-id", request.id);
    if (options.isClosing?.()) {
      reply.header("connection", "close");
      return sendError(
        request,
        reply,
        new GatewayError("service_unavailable", "this gateway instance is shutting down: send the request again (another instance will take it)", {
          retryAfterSeconds: 1,
        }),
      );
    }
  });
  if (options.preAuthLimiter !== undefined) installPreAuthLimits(app, options.preAuthLimiter);
  // Credentials first: nothing of the request is read for a caller who may not use the route.
  installRouteAuth(app, options.auth);
  app.addHook("preValidation", async (request) => refuseControlCharacters(request));

  app.setErrorHandler((err, request, reply) => {
    const error = toGatewayError(err);
    if (error.code === "internal_error") {
      request.log.error({ err: error.cause, correlationId: request.id }, "unhandled error");
    }
    request.logFields ??= {};
    request.logFields.errorCode = error.code;
    if (error.logDetail !== undefined) request.logFields.errorDetail = error.logDetail;
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

/** Trusts the nearest `hops` proxies in X-Forwarded-For (the client is the address before them). */
const trustHops = (hops: number) => (_address: string, hop: number) => hop < hops;

/** The route pattern (bounded), never the raw URL with its ids and query. */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? "unmatched";
}
