import type { FastifyInstance } from "fastify";
import { GatewayError } from "../../errors/index.js";
import type { JobService } from "../../jobs/service.js";
import { checkUrlShape } from "../../net/address-policy.js";
import { AGENT_OR_ADMIN, agentTokenOf, AUTHENTICATED_BY_HANDLER } from "../auth.js";
import { PRINTABLE_ID } from "../schemas.js";
import { CALL_BODY_PROPERTIES, CALL_HEADERS_SCHEMA, CALLBACK_URL, toProxyInput } from "./proxy.js";

/** `POST /api/jobs` (a tool call run asynchronously) and `GET /api/jobs/:id`. */
export function registerJobRoutes(
  app: FastifyInstance,
  deps: {
    jobs: JobService | undefined;
    /** Judges a callback URL with the SSRF guard before the job is accepted. */
    judgeCallback: (hostname: string) => Promise<unknown>;
  },
) {
  const enabled = (): JobService => {
    if (deps.jobs === undefined) throw new GatewayError("feature_disabled", "async jobs are turned off on this gateway (FF_ASYNC=off)");
    return deps.jobs;
  };

  app.post(
    "/api/jobs",
    {
      config: { ...AUTHENTICATED_BY_HANDLER, preAuthLimit: "anonymous_call" },
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["tool", "action"],
          properties: { ...CALL_BODY_PROPERTIES, callbackUrl: CALLBACK_URL },
        },
        headers: CALL_HEADERS_SCHEMA,
      },
    },
    async (request, reply) => {
      const jobs = enabled();
      const { callbackUrl } = request.body as { callbackUrl?: string };
      if (callbackUrl !== undefined) await deps.judgeCallback(checkUrlShape(callbackUrl).hostname);
      const job = await jobs.submit(toProxyInput(request), callbackUrl);
      request.logFields.agentId = job.agentId;
      reply.code(202).header("location", `/api/jobs/${job.jobId}`);
      return { jobId: job.jobId, status: job.status, correlationId: job.correlationId };
    },
  );

  app.get(
    "/api/jobs/:id",
    {
      config: AGENT_OR_ADMIN,
      schema: { params: { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 64, pattern: PRINTABLE_ID } } } },
    },
    async (request) => {
      const jobs = enabled();
      const { id } = request.params as { id: string };
      // The admin sees every job; an agent only its own (someone else's reads as not found).
      const agentId = request.caller?.role === "admin" ? undefined : agentTokenOf(request).agentId;
      return jobs.get(id, agentId);
    },
  );
}
