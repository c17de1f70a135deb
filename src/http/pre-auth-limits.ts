import ipaddr from "ipaddr.js";
import type { FastifyInstance } from "fastify";
import type { PreAuthLimiter } from "../limits/pre-auth.js";
import { bearerOf } from "./auth.js";

/** Which pre-authentication limit a route takes part in, declared as `config: { preAuthLimit }`. */
export type PreAuthLimitKind =
  /** POST /api/tokens: per client address before parsing, per agent id once the body is valid. */
  | "token_request"
  /** The road's doors: per client address, for requests that carry no credential at all. */
  | "anonymous_call";

declare module "fastify" {
  interface FastifyContextConfig {
    preAuthLimit?: PreAuthLimitKind;
  }
}

/**
 * The bucket key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64, since one
 * host usually holds a whole /64 and would otherwise get 2^64 buckets.
 */
export function clientAddressKey(address: string): string {
  try {
    let parsed = ipaddr.parse(address);
    if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) parsed = parsed.toIPv4Address();
    if (parsed instanceof ipaddr.IPv4) return `ip4:${parsed.toString()}`;
    return `ip6:${parsed.parts
      .slice(0, 4)
      .map((p) => p.toString(16))
      .join(":")}::/64`;
  } catch {
    return `other:${address.slice(0, 64)}`;
  }
}

/** Applies each route's declared pre-authentication limit: before the body is read where possible. */
export function installPreAuthLimits(app: FastifyInstance, limiter: PreAuthLimiter): void {
  app.addHook("onRequest", async (request) => {
    const kind = request.routeOptions.config.preAuthLimit;
    if (kind === "token_request") await limiter.take("token_requests_per_address", clientAddressKey(request.ip));
    else if (kind === "anonymous_call" && bearerOf(request) === undefined) await limiter.take("anonymous_calls_per_address", clientAddressKey(request.ip));
  });
  // The agent id is in the body: counted once the body is known to be well-formed.
  app.addHook("preHandler", async (request) => {
    if (request.routeOptions.config.preAuthLimit !== "token_request") return;
    const agentId = (request.body as { agentId?: unknown } | null | undefined)?.agentId;
    if (typeof agentId === "string") await limiter.take("token_requests_per_agent", agentId);
  });
}
