import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GatewayError } from "../../errors/index.js";
import type { VerifiedToken } from "../../identity/index.js";
import { allowedModels, openAIError } from "../../openai-compat/index.js";
import type { ProxyInput, ProxyOutput } from "../../proxy/index.js";
import { AUTHENTICATED_BY_HANDLER, bearerOf } from "../auth.js";
import { toGatewayError } from "../errors.js";
import { JSON_CONTENT_TYPE } from "./proxy.js";

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The OpenAI-compatible door: point the official OpenAI client's `baseURL` at `<gateway>/v1` with the
 * agent's gateway token as its API key. `POST /v1/chat/completions` runs the road as `openai:chat`
 * and answers the upstream's body as is; `GET /v1/models` lists the models policy lets this agent
 * chat with. Every error, the framework's included, is in OpenAI's shape.
 */
export function registerOpenAICompatRoutes(
  app: FastifyInstance,
  deps: { handle: (input: ProxyInput) => Promise<ProxyOutput>; mayChat: (token: VerifiedToken, model: string) => boolean },
) {
  const errorHandler = (err: FastifyError | GatewayError, request: FastifyRequest, reply: FastifyReply) => {
    const error = toGatewayError(err);
    if (error.code === "internal_error") request.log.error({ err: error.cause, correlationId: request.id }, "unhandled error");
    request.logFields.errorCode = error.code;
    const answer = openAIError(error, request.id);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };

  const inputOf = (request: FastifyRequest, action: string, params: Record<string, unknown>): ProxyInput => {
    const input: ProxyInput = { door: "openai", tool: "openai", action, params, rawToken: bearerOf(request), correlationId: request.id };
    const key = request.headers["idempotency-key"];
    if (typeof key === "string" && IDEMPOTENCY_KEY.test(key)) input.idempotencyKey = key;
    const traceparent = request.headers.traceparent;
    if (typeof traceparent === "string" && TRACEPARENT.test(traceparent)) input.traceparent = traceparent;
    request.logFields.tool = "openai";
    request.logFields.action = action;
    return input;
  };

  const answered = (request: FastifyRequest, reply: FastifyReply, out: ProxyOutput) => {
    request.logFields.agentId = out.token.agentId;
    request.logFields.decision = "allow";
    reply.header("server-timing", `gateway;dur=${out.meta.gatewayMs}, upstream;dur=${out.meta.upstreamMs}`);
    if (out.token.refreshRecommended) reply.header("x-token-refresh", "recommended");
    if (out.meta.replayed) reply.header("idempotent-replayed", "true");
  };

  // The road checks the token; callers without any credential are limited per address first.
  const config = { ...AUTHENTICATED_BY_HANDLER, preAuthLimit: "anonymous_call" } as const;

  // Fastify's reply is thenable: handing it back from the error handler is Fastify's own idiom, not a lost promise.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  app.post("/v1/chat/completions", { errorHandler, config }, async (request, reply) => {
    const body = request.body;
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw new GatewayError("invalid_request", "the body must be a JSON object: {model, messages, …}");
    const { stream, ...params } = body as Record<string, unknown>;
    if (stream !== undefined && typeof stream !== "boolean")
      throw new GatewayError("invalid_request", "stream must be true or false", { details: { field: "stream" } });
    const input = inputOf(request, "chat", params);
    if (stream === true) {
      input.stream = true;
      // A stream cannot be replayed, so it is not deduplicated either.
      delete input.idempotencyKey;
    }
    const out = await deps.handle(input);
    answered(request, reply, out);
    if (out.stream !== undefined) {
      // Piped as it arrives; if the client goes away Fastify destroys the stream, which cancels the upstream request.
      reply.header("content-type", "text/event-stream; charset=utf-8").header("cache-control", "no-cache").header("x-accel-buffering", "no");
      return reply.send(out.stream);
    }
    // The upstream's own JSON text, as OpenAI's client expects it, when nothing in it had to be scrubbed.
    if (out.raw !== undefined) return reply.type(JSON_CONTENT_TYPE).send(out.raw);
    return out.data;
  });

  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- as above
  app.get("/v1/models", { errorHandler, config }, async (request, reply) => {
    const out = await deps.handle(inputOf(request, "models", {}));
    answered(request, reply, out);
    return allowedModels(out.data, (model) => deps.mayChat(out.token, model));
  });
}
