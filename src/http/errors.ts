import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { errorBody, GatewayError, isGatewayError } from "../errors/index.js";

/** Turns anything thrown on a route into the one error shape; internals never leak. */
export function toGatewayError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  const fe = err as Partial<FastifyError> & { validationContext?: string };
  if (fe.validation !== undefined) {
    return new GatewayError("invalid_request", `invalid request: ${fe.message ?? "validation failed"}`, {
      details: {
        issues: fe.validation.slice(0, 10).map((v) => ({
          path: `${fe.validationContext ?? "body"}${v.instancePath.replaceAll("/", ".")}`,
          message: v.message ?? "invalid",
          ...(v.params && "additionalProperty" in v.params ? { field: String(v.params.additionalProperty) } : {}),
        })),
      },
    });
  }
  switch (fe.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new GatewayError("payload_too_large", "the request body is larger than the gateway accepts (BODY_LIMIT_BYTES)");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new GatewayError("unsupported_media_type", "send the body as application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new GatewayError("invalid_request", "the body is empty: send a JSON object");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new GatewayError("invalid_request", "the body is not valid JSON");
    default:
      break;
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) {
    return new GatewayError("invalid_request", "the body is not valid JSON");
  }
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new GatewayError("invalid_request", fe.message ?? "bad request", { status: fe.statusCode });
  }
  return new GatewayError("internal_error", "the gateway failed to handle this request; quote the correlation id when reporting it", {
    cause: err,
  });
}

/** Sends a GatewayError in the common shape, with Retry-After when it says when to come back. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: GatewayError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  reply.code(error.status);
  return reply.send(errorBody(error, request.id));
}
