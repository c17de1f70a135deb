import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError } from "../errors/index.js";
import type { VerifiedToken } from "../identity/index.js";

/**
 * A kind of caller a route can admit. `"admin"` means any operator (the bootstrap admin key, an
 * operator key or a console session, viewer or higher); routes meant for operators alone declare
 * `config: { role }` instead, checked by the operator hook (src/http/operator-auth.ts).
 */
export type CallerRole = "admin" | "agent";

/**
 * Who may call a route, declared in its options as `config: { auth: ["admin"] }`. `"none"` means
 * the HTTP layer checks no credential because the handler proves identity itself (the road checks
 * the agent token, the token endpoint checks a signed assertion).
 */
export type RouteAuth = readonly CallerRole[] | "none";

/** The authenticated caller of a route that declared `auth` (`admin`: an operator, any role). */
export type Caller = { role: "admin" } | { role: "agent"; token: VerifiedToken };

/** One row of the route table: what each route declared. */
export interface RouteAccess {
  method: string;
  url: string;
  auth: RouteAuth | undefined;
  /** The operator role the route declared (`config: { role }`), if any. */
  role: string | undefined;
}

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** Set by the authentication hook for routes that declared roles. */
    caller: Caller | undefined;
  }
  interface FastifyInstance {
    /** Every route with the access it declared (for the test that no route is left open by accident). */
    routeAccess(): RouteAccess[];
  }
}

export interface RouteAuthDeps {
  /**
   * The operator the request's credentials name (bootstrap admin key, operator key or console
   * session): `operator` when they name one, `refusal` when they are an operator credential that is
   * not valid, neither when they name no operator (then the bearer may be an agent token).
   */
  identifyOperator: (request: FastifyRequest) => Promise<{ operator?: unknown; refusal?: GatewayError }>;
  /** @throws GatewayError token_* / agent_suspended */
  verifyAgentToken: (raw: string | undefined) => Promise<VerifiedToken>;
}

/** Reads the bearer credential from the Authorization header, if any. */
export function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** A constant-time check of the admin key: both sides are hashed first so lengths leak nothing. */
export function adminKeyMatcher(adminKey: string): (presented: string | undefined) => boolean {
  const expected = createHash("sha256").update(adminKey).digest();
  return (presented) => {
    const actual = createHash("sha256")
      .update(presented ?? "")
      .digest();
    // Compare even when nothing was presented, so both paths cost the same.
    return timingSafeEqual(expected, actual) && presented !== undefined;
  };
}

const adminRefusal = () =>
  new GatewayError("admin_unauthorized", "this route needs an operator: 'Authorization: Bearer <admin or operator key>' or a console session");

/** For handlers that check the admin key themselves. Prefer declaring `config: { role }`. */
export function createAdminGuard(adminKey: string): (request: FastifyRequest) => Promise<void> {
  const isAdminKey = adminKeyMatcher(adminKey);
  return async (request) => {
    if (!isAdminKey(bearerOf(request))) throw adminRefusal();
  };
}

/**
 * Enforces each route's declared `auth` in one onRequest hook: before the body is read, parsed or
 * validated, so an anonymous caller learns nothing about a route's schema, and a route cannot
 * forget its check (the route table shows what each one declared).
 */
export function installRouteAuth(app: FastifyInstance, deps: RouteAuthDeps): void {
  const table: RouteAccess[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) table.push({ method, url: route.url, auth: route.config?.auth, role: route.config?.role });
  });
  app.decorate("routeAccess", () => [...table]);
  app.decorateRequest("caller", undefined);

  app.addHook("onRequest", async (request) => {
    const auth = request.routeOptions.config.auth;
    if (auth === undefined || auth === "none") return;
    const presented = bearerOf(request);
    if (auth.includes("admin")) {
      // Any operator (viewer or higher) is admitted as "admin": the same resolution as the
      // operator hook's (bootstrap key, operator key, console session).
      const { operator, refusal } = await deps.identifyOperator(request);
      if (operator !== undefined) {
        request.caller = { role: "admin" };
        return;
      }
      if (!auth.includes("agent")) throw refusal ?? adminRefusal();
      // A bearer that is no operator key may still be an agent token; a bad session with no
      // bearer at all is refused as such.
      if (presented === undefined && refusal !== undefined) throw refusal;
    }
    if (!auth.includes("agent")) throw adminRefusal();
    const token = await deps.verifyAgentToken(presented);
    request.caller = { role: "agent", token };
    request.logFields.agentId = token.agentId;
  });
}

/** Route configs for the common cases: `app.get(url, { config: AGENT_ONLY }, handler)`. Operator-only routes declare `config: { role }`. */
export const AGENT_ONLY = { auth: ["agent"] } as const satisfies { auth: RouteAuth };
export const AGENT_OR_ADMIN = { auth: ["agent", "admin"] } as const satisfies { auth: RouteAuth };
/** The handler proves the caller's identity itself (the road, or a signed assertion). */
export const AUTHENTICATED_BY_HANDLER = { auth: "none" } as const satisfies { auth: RouteAuth };

/** The verified token of a route declared `auth: ["agent"]` (the hook ran before the handler). */
export function agentTokenOf(request: FastifyRequest): VerifiedToken {
  if (request.caller?.role !== "agent") throw new Error(`route ${request.routeOptions.url ?? "?"} reads an agent token but does not declare auth: ["agent"]`);
  return request.caller.token;
}
