import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AuditLog } from "../audit/index.js";
import { GatewayError } from "../errors/index.js";
import { roleAllows, sameSecret, type OperatorIdentity, type OperatorRole, type OperatorService } from "../operators/index.js";
import { bearerOf } from "./auth.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The operator role a route needs; routes without one are public or authenticate agents themselves. */
    role?: OperatorRole;
    /** A non-GET route that changes nothing (explain, sign-out): kept out of the audit trail of admin changes. */
    readOnly?: boolean;
  }
  interface FastifyRequest {
    /** The operator this request's credentials name, on a route that declares a role (checks may still refuse it). */
    operator: AuthenticatedOperator | null;
  }
}

export interface AuthenticatedOperator extends OperatorIdentity {
  via: "key" | "session";
  /** Console sessions only: the id in the cookie and the CSRF token every change must echo. */
  session?: { id: string; csrfToken: string; expiresAt: number };
}

/** One registered route and the role it declares, for the route × role test and the docs. */
export interface DeclaredRoute {
  method: string;
  url: string;
  role: OperatorRole | undefined;
}

export const SESSION_COOKIE = "4runr_console";
export const CSRF_HEADER = "x-csrf-token";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** Reads one cookie's value from the Cookie header. */
export function cookieOf(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== "string") return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Operator authentication for every route that declares `config: { role }`, checked in one
 * `onRequest` hook, before the body is parsed. A bearer key (the bootstrap admin key or an operator
 * key) or a console session cookie identifies the operator; a session must also send its CSRF token
 * on every change. Afterwards, every change made by an operator is written to the audit trail with
 * the operator's name.
 */
export function installOperatorAuth(app: FastifyInstance, deps: { operators: OperatorService; audit: AuditLog }) {
  const routes: DeclaredRoute[] = [];
  app.decorateRequest("operator", null);
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) if (method !== "HEAD") routes.push({ method, url: route.url, role: route.config?.role });
  });

  /** Who the request's credentials name, or a refusal; undefined when it carries none. */
  async function identify(request: FastifyRequest): Promise<AuthenticatedOperator | undefined> {
    const bearer = bearerOf(request);
    if (bearer !== undefined) {
      const operator = await deps.operators.authenticateKey(bearer);
      if (operator === undefined) throw new GatewayError("admin_unauthorized", "this key is not the admin key nor an active operator's key");
      return { ...operator, via: "key" };
    }
    const sessionId = cookieOf(request, SESSION_COOKIE);
    if (sessionId === undefined || sessionId === "") return undefined;
    const session = await deps.operators.resolveSession(sessionId);
    if (session === "expired") throw new GatewayError("session_expired", "the console session has expired: sign in again");
    if (session === undefined)
      throw new GatewayError("admin_unauthorized", "the console session is not valid (signed out, or the operator was disabled or rotated): sign in again");
    return { ...session.operator, via: "session", session: { id: sessionId, csrfToken: session.csrfToken, expiresAt: session.expiresAt } };
  }

  app.addHook("onRequest", async (request) => {
    const needed = request.routeOptions.config?.role;
    if (needed === undefined) return;
    const operator = await identify(request);
    if (operator === undefined) {
      throw new GatewayError("admin_unauthorized", "this route needs an operator: 'Authorization: Bearer <admin or operator key>' or a console session");
    }
    // Set before the checks below so a refused change is audited with who tried it.
    request.operator = operator;
    request.logFields.operator = operator.name;
    if (operator.session !== undefined && !SAFE_METHODS.has(request.method)) {
      // Defence in depth beside the token: a browser names the page that sent a change. Behind a
      // proxy that rewrites Host, the public host arrives as X-Forwarded-Host (a header a cross-site
      // page cannot add without a preflight this gateway never grants).
      const origin = request.headers.origin;
      const hosts = [request.headers.host, request.headers["x-forwarded-host"]]
        .flat()
        .map((h) => h?.split(",")[0]?.trim())
        .filter((h): h is string => h !== undefined && h !== "");
      if (typeof origin === "string" && origin !== "null" && !hosts.includes(hostOf(origin) ?? "")) {
        throw new GatewayError("csrf_invalid", "a change made with a console session must come from the console's own origin");
      }
      const sent = request.headers[CSRF_HEADER];
      // The cookie rides along with any request the browser makes; only the page itself knows the token.
      if (typeof sent !== "string" || !sameSecret(sent, operator.session.csrfToken)) {
        throw new GatewayError("csrf_invalid", `a change made with a console session must send the session's CSRF token in ${CSRF_HEADER}`);
      }
    }
    if (!roleAllows(operator.role, needed)) {
      throw new GatewayError(
        "operator_forbidden",
        `operator "${operator.name}" is a ${operator.role}; this needs ${needed === "viewer" ? "a viewer" : `an ${needed}`}`,
        { details: { role: operator.role, needed } },
      );
    }
  });

  // Every change an operator makes, allowed or refused after authentication, with who made it.
  app.addHook("onResponse", async (request, reply) => {
    const operator = request.operator;
    if (operator === null || SAFE_METHODS.has(request.method) || request.routeOptions.config?.readOnly === true) return;
    const params = (request.params ?? {}) as Record<string, unknown>;
    // Not awaited (the answer is sent); a write that fails is reported by the audit log itself.
    void deps.audit
      .record({
        correlationId: request.id,
        agentId: request.routeOptions.url?.startsWith("/api/agents/") && typeof params.id === "string" ? params.id : null,
        tool: typeof params.tool === "string" ? params.tool : null,
        action: `${request.method} ${request.routeOptions.url ?? "unmatched"}`.slice(0, 128),
        decision: reply.statusCode < 400 ? "allow" : reply.statusCode >= 500 ? "error" : "deny",
        reason: typeof request.logFields.errorCode === "string" ? request.logFields.errorCode : null,
        status: reply.statusCode,
        latencyMs: Math.round(reply.elapsedTime * 1000) / 1000,
        upstreamMs: null,
        cache: null,
        attempts: null,
        paramsHash: null,
        operator: operator.name,
      })
      .catch(() => undefined);
  });

  /** The operator a request's credentials name, or why they name nobody. */
  async function whoIs(request: FastifyRequest): Promise<{ operator?: AuthenticatedOperator; refusal?: GatewayError }> {
    try {
      const operator = await identify(request);
      return operator === undefined ? {} : { operator };
    } catch (err) {
      if (err instanceof GatewayError) return { refusal: err };
      throw err;
    }
  }

  return {
    routes: routes as readonly DeclaredRoute[],
    whoIs,
    /** The operator a request's credentials name, without refusing (for routes agents may also use). */
    operatorOf: async (request: FastifyRequest): Promise<AuthenticatedOperator | undefined> => (await whoIs(request)).operator,
  };
}
