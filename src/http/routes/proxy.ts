import type { FastifyInstance, FastifyRequest } from "fastify";
import { checkUrlShape } from "../../net/address-policy.js";
import type { HeldOutput, ProxyInput, ProxyOutput } from "../../proxy/index.js";
import { AUTHENTICATED_BY_HANDLER, bearerOf } from "../auth.js";
import { NO_CONTROL_CHARACTERS } from "../schemas.js";

const NAME = { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-z0-9][a-z0-9_-]*$" } as const;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** What Fastify sets for an object it serialises: the same whichever way the body was built. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";
const ENVELOPE_START = Buffer.from('{"data":');

/** The body schema shared by `POST /api/proxy` and `POST /api/jobs`. */
export const CALL_BODY_PROPERTIES = { tool: NAME, action: NAME, params: { type: "object" } } as const;
export const CALLBACK_URL = { type: "string", minLength: 8, maxLength: 2048, pattern: NO_CONTROL_CHARACTERS } as const;
export const CALL_HEADERS_SCHEMA = { type: "object", properties: { "idempotency-key": { type: "string", pattern: IDEMPOTENCY_KEY.source } } } as const;

/** Reads a tool call (body, token, idempotency key, cache mode, trace context) from a request. */
export function toProxyInput(request: FastifyRequest): ProxyInput {
  const body = request.body as { tool: string; action: string; params?: Record<string, unknown> };
  const input: ProxyInput = {
    tool: body.tool,
    action: body.action,
    params: body.params ?? {},
    rawToken: bearerOf(request),
    correlationId: request.id,
  };
  request.logFields.tool = body.tool;
  request.logFields.action = body.action;
  const idempotencyKey = request.headers["idempotency-key"];
  if (typeof idempotencyKey === "string") input.idempotencyKey = idempotencyKey;
  const cacheControl = request.headers["cache-control"];
  if (typeof cacheControl === "string" && /\bno-cache\b|\bno-store\b/i.test(cacheControl)) input.cacheMode = "bypass";
  const traceparent = request.headers.traceparent;
  if (typeof traceparent === "string" && TRACEPARENT.test(traceparent)) input.traceparent = traceparent;
  return input;
}

/** `POST /api/proxy`: an agent calls a tool. */
export function registerProxyRoutes(
  app: FastifyInstance,
  deps: {
    handle: (input: ProxyInput) => Promise<ProxyOutput | HeldOutput>;
    policyEnforced: boolean;
    /** Judges a callback URL with the SSRF guard before the call is taken. */
    judgeCallback: (hostname: string) => Promise<unknown>;
  },
) {
  app.post(
    "/api/proxy",
    {
      // The road checks the agent token; callers without any credential are limited per address first.
      config: { ...AUTHENTICATED_BY_HANDLER, preAuthLimit: "anonymous_call" },
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["tool", "action"],
          // callbackUrl: where the result goes if policy holds the call for approval.
          properties: { ...CALL_BODY_PROPERTIES, callbackUrl: CALLBACK_URL },
        },
        headers: CALL_HEADERS_SCHEMA,
      },
    },
    async (request, reply) => {
      const input = toProxyInput(request);
      const { callbackUrl } = request.body as { callbackUrl?: string };
      if (callbackUrl !== undefined) {
        await deps.judgeCallback(checkUrlShape(callbackUrl).hostname);
        input.callbackUrl = callbackUrl;
      }
      if (!deps.policyEnforced) reply.header("x-gateway-warning", "policy enforcement is OFF (FF_POLICY=off)");
      try {
        const out = await deps.handle(input);
        request.logFields.agentId = out.token.agentId;
        if ("held" in out) {
          request.logFields.decision = "pending_approval";
          reply.code(202).header("location", `/api/approvals/${out.held.id}`);
          return { approval: out.held };
        }
        request.logFields.decision = "allow";
        request.logFields.cache = out.meta.cache;
        request.logFields.attempts = out.meta.attempts;
        reply.header("server-timing", `gateway;dur=${out.meta.gatewayMs}, upstream;dur=${out.meta.upstreamMs}`);
        if (out.token.refreshRecommended) reply.header("x-token-refresh", "recommended");
        if (out.meta.replayed) reply.header("idempotent-replayed", "true");
        // The upstream's JSON bytes go into the envelope as they came: parsed once (to know it is JSON), never serialised or encoded again.
        if (out.raw !== undefined) {
          // Fastify's thenable reply, handed back to Fastify: awaiting it would wait for the response to be written.
          // eslint-disable-next-line @typescript-eslint/return-await
          return reply.type(JSON_CONTENT_TYPE).send(Buffer.concat([ENVELOPE_START, out.raw, Buffer.from(`,"meta":${JSON.stringify(out.meta)}}`)]));
        }
        return { data: out.data, meta: out.meta };
      } catch (err) {
        request.logFields.decision = "refused";
        throw err;
      }
    },
  );
}
