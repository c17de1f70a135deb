import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { errorBody, GatewayError, isGatewayError } from "../errors/index.js";

/**
 * PostgreSQL "data exception" (SQLSTATE class 22: a NUL byte in text, a number out of range, bad
 * text for a type). Only a value from the request can cause one, and SQLite accepts the same values
 * silently, so the edge validation should have refused it: answered as a 400 whose log line
 * (errorDetail) names the miss, so it can be fixed at the edge.
 */
function isDatabaseDataException(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  return typeof e?.code === "string" && /^22[0-9A-Z]{3}$/.test(e.code) && typeof e.severity === "string";
}

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
  if (isDatabaseDataException(err)) {
    return new GatewayError(
      "invalid_request",
      "a value in this request cannot be stored or searched: remove control characters and keep numbers within their documented limits",
      {
        logDetail: `database data exception ${String(fe.code)}: edge validation missed this input`,
      },
    );
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

/** The router's refusals (before any route or hook runs) as catalogue errors. */
export function fromFrameworkError(err: FastifyError): GatewayError {
  switch (err.code) {
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new GatewayError("uri_too_long", "a path segment of this URL is longer than any the API accepts");
    case "FST_ERR_BAD_URL":
      return new GatewayError("invalid_request", "the URL is not valid: check its percent-encoding (e.g. %E2%82%AC, never a lone %)");
    default:
      return toGatewayError(err);
  }
}

/**
 * Answers what Node's HTTP parser refuses (oversized headers, a bare CR, Content-Length with
 * Transfer-Encoding, an unknown method, a slow client) with the one error shape, then closes the
 * connection: after a framing error nothing more on it can be trusted.
 */
export function clientErrorResponder(
  newCorrelationId: () => string,
  log: (fields: { correlationId: string; parserError: string | undefined; status: number }) => void,
): (err: Error & { code?: string }, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const error =
      err.code === "HPE_HEADER_OVERFLOW"
        ? new GatewayError("headers_too_large", "the request headers are larger than the gateway accepts (16 KiB in all)")
        : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? new GatewayError("request_timeout", "the request was not received in time: send it again")
          : new GatewayError("invalid_request", "the request is not well-formed HTTP/1.1 (request line, header syntax or message framing)");
    const correlationId = newCorrelationId();
    log({ correlationId, parserError: err.code, status: error.status });
    const body = JSON.stringify(errorBody(error, correlationId));
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? "Error"}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `X-Correlation-Id: ${correlationId}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Path parameters and query values are identifiers and filters, never free text: a control
 * character (NUL above all, which PostgreSQL refuses in text) is refused at the edge for every route.
 * @throws GatewayError invalid_request naming the field
 */
export function refuseControlCharacters(request: FastifyRequest): void {
  for (const [where, values] of [
    ["params", request.params],
    ["querystring", request.query],
  ] as const) {
    if (values === null || typeof values !== "object") continue;
    for (const [field, value] of Object.entries(values as Record<string, unknown>)) {
      const texts = Array.isArray(value) ? value : [value];
      if (texts.some((v) => typeof v === "string" && CONTROL_CHARACTER.test(v))) {
        throw new GatewayError("invalid_request", `${where}.${field.slice(0, 64)} must not contain control characters`, {
          details: { field: `${where}.${field.slice(0, 64)}` },
        });
      }
    }
  }
}
