import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuditLog } from "../../audit/index.js";
import { GatewayError } from "../../errors/index.js";
import type { GatewayMetrics } from "../../obs/metrics.js";
import { SignInThrottle, type OperatorService } from "../../operators/index.js";
import { cookieOf, SESSION_COOKIE, type AuthenticatedOperator } from "../operator-auth.js";

/** Whether the browser reached us over HTTPS (directly, or through a proxy that says so). */
function overHttps(request: FastifyRequest): boolean {
  // Trusting X-Forwarded-Proto here can only add `Secure`, which never weakens the cookie.
  return (
    request.protocol === "https" ||
    String(request.headers["x-forwarded-proto"] ?? "")
      .split(",")[0]
      ?.trim() === "https"
  );
}

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  const attributes = [`${SESSION_COOKIE}=${value}`, "Path=/", "HttpOnly", "SameSite=Strict", `Max-Age=${maxAgeSeconds}`];
  if (overHttps(request)) attributes.push("Secure");
  reply.header("set-cookie", attributes.join("; "));
}

/** The metric families the console's charts are drawn from. */
const CONSOLE_METRICS = new Set(["gateway_requests_total", "gateway_request_duration_ms"]);

/**
 * The console's sign-in (an operator key exchanged for an HttpOnly session cookie and a CSRF token
 * kept in the page's memory), sign-out, and the metric families its charts use.
 */
export function registerConsoleApiRoutes(
  app: FastifyInstance,
  deps: {
    operators: OperatorService;
    audit: AuditLog;
    metrics: GatewayMetrics;
    now: () => number;
    whoIs: (request: FastifyRequest) => Promise<{ operator?: AuthenticatedOperator; refusal?: GatewayError }>;
  },
) {
  const { operators } = deps;
  const throttle = new SignInThrottle({ now: deps.now });

  app.post(
    "/api/console/session",
    {
      schema: {
        body: { type: "object", additionalProperties: false, required: ["key"], properties: { key: { type: "string", minLength: 1, maxLength: 512 } } },
      },
    },
    async (request, reply) => {
      const signIn = (decision: "allow" | "deny", status: number, reason: string | null, name: string) =>
        void deps.audit
          .record({
            correlationId: request.id,
            agentId: null,
            tool: null,
            action: "console sign-in",
            decision,
            reason,
            status,
            latencyMs: 0,
            upstreamMs: null,
            cache: null,
            attempts: null,
            paramsHash: null,
            operator: name,
          })
          .catch(() => undefined);
      const waitSeconds = throttle.retryAfterSeconds(request.ip);
      if (waitSeconds > 0) {
        signIn("deny", 429, "rate_limited", "(throttled)");
        throw new GatewayError("rate_limited", "too many wrong keys from this address: wait before trying again", { retryAfterSeconds: waitSeconds });
      }
      const operator = await operators.authenticateKey((request.body as { key: string }).key);
      if (operator === undefined) {
        throttle.failed(request.ip);
        signIn("deny", 401, "admin_unauthorized", "(unknown key)");
        throw new GatewayError("admin_unauthorized", "this key is not the admin key nor an active operator's key");
      }
      throttle.succeeded(request.ip);
      const { sessionId, session } = await operators.openSession(operator);
      signIn("allow", 200, null, operator.name);
      setSessionCookie(request, reply, sessionId, Math.max(1, Math.floor((session.expiresAt - deps.now()) / 1000)));
      reply.header("cache-control", "no-store");
      return { operator: session.operator, csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() };
    },
  );

  /**
   * Who is signed in (nobody is an answer, not an error: the page asks before it knows); the page
   * keeps the CSRF token in memory and asks again after a reload.
   */
  app.get("/api/console/session", async (request, reply) => {
    const { operator, refusal } = await deps.whoIs(request);
    reply.header("cache-control", "no-store");
    if (operator === undefined) return { operator: null, csrfToken: null, expiresAt: null, ...(refusal === undefined ? {} : { reason: refusal.code }) };
    return {
      operator: { id: operator.id, name: operator.name, role: operator.role },
      csrfToken: operator.session?.csrfToken ?? null,
      expiresAt: operator.session === undefined ? null : new Date(operator.session.expiresAt).toISOString(),
    };
  });

  app.delete("/api/console/session", { config: { role: "viewer" } }, async (request, reply) => {
    const sessionId = cookieOf(request, SESSION_COOKIE);
    if (sessionId !== undefined) await operators.closeSession(sessionId);
    setSessionCookie(request, reply, "", 0);
    reply.code(204);
    return null;
  });

  app.get("/api/console/metrics", { config: { role: "viewer" } }, async (_request, reply) => {
    const families = (await deps.metrics.registry.getMetricsAsJSON()).filter((m) => CONSOLE_METRICS.has(m.name));
    reply.header("cache-control", "no-store");
    return {
      at: new Date(deps.now()).toISOString(),
      metrics: families.map((m) => ({
        name: m.name,
        type: m.type,
        values: m.values.map((v) => ({ ...("metricName" in v && v.metricName ? { metricName: v.metricName } : {}), labels: v.labels, value: v.value })),
      })),
    };
  });
}
