import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError } from "../errors/index.js";
import type { VerifiedToken } from "../identity/index.js";

/** A kind of caller a route can admit (an operator role would be one more member). */
export type CallerRole = "admin" | "agent";

/**
 * Who may call a route, declared in its options as `config: { auth: ["admin"] }`. `"none"` means
 * the HTTP layer checks no credential because the handler proves identity itself (the road checks
 * the agent token, the token endpoint checks a signed assertion).
 */
export type RouteAuth = readonly CallerRole[] | "none";

/** The authenticated caller of a route that declared `auth`. */
export type Caller = { role: "admin" } | { role: "agent"; token: VerifiedToken };

/** One row of the route table: what each route declared. */
export interface RouteAccess {
  method: string;
  url: string;
  auth: RouteAuth | undefined;
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
  adminKey: string;
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
    const actual = createHash("sha256").update(presented ?? "").digest();
    // Compare even when nothing was presented, so both paths cost the same.
    return timingSafeEqual(expected, actual) && presented !== undefined;
  };
}

const adminRefusal = () =>
  new GatewayError("admin_unauthorized", "this route needs 'Authorization: Bearer <admin key>' (GATEWAY_ADMIN_KEY or DATA_DIR/admin.key)");

/** For handlers that check the admin key themselves. Prefer declaring `config: { auth: ["admin"] }`. */
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
  const isAdminKey = adminKeyMatcher(deps.adminKey);
  const table: RouteAccess[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) table.push({ method, url: route.url, auth: route.config?.auth });
  });
  app.decorate("routeAccess", () => [...table]);
  app.decorateRequest("caller", undefined);

  app.addHook("onRequest", async (request) => {
    const auth = request.routeOptions.config.auth;
    if (auth === undefined || auth === "none") return;
    const presented = bearerOf(request);
    if (auth.includes("admin") && isAdminKey(presented)) {
      request.caller = { role: "admin" };
      return;
    }
    if (!auth.includes("agent")) throw adminRefusal();
    const token = await deps.verifyAgentToken(presented);
    request.caller = { role: "agent", token };
    request.logFields.agentId = token.agentId;
  });
}

/** Route configs for the common cases: `app.get(url, { config: ADMIN_ONLY }, handler)`. */
export const ADMIN_ONLY = { auth: ["admin"] } as const satisfies { auth: RouteAuth };
export const AGENT_ONLY = { auth: ["agent"] } as const satisfies { auth: RouteAuth };
export const AGENT_OR_ADMIN = { auth: ["agent", "admin"] } as const satisfies { auth: RouteAuth };
/** The handler proves the caller's identity itself (the road, or a signed assertion). */
export const AUTHENTICATED_BY_HANDLER = { auth: "none" } as const satisfies { auth: RouteAuth };

/** The verified token of a route declared `auth: ["agent"]` (the hook ran before the handler). */
export function agentTokenOf(request: FastifyRequest): VerifiedToken {
  if (request.caller?.role !== "agent") throw new Error(`route ${request.routeOptions.url ?? "?"} reads an agent token but does not declare auth: ["agent"]`);
  return request.caller.token;
}
