import { hash } from "node:crypto";
import { GatewayError } from "../errors/index.js";
import type { LimitCheck } from "../policy/types.js";
import type { Counters } from "./counters.js";

/** Requests per minute (also the burst) for each limit applied before authentication; 0 turns one off. */
export interface PreAuthRates {
  tokenRequestsPerMinutePerAddress: number;
  tokenRequestsPerMinutePerAgent: number;
  anonymousCallsPerMinutePerAddress: number;
}

export type PreAuthLimit = "token_requests_per_address" | "token_requests_per_agent" | "anonymous_calls_per_address";

const rateOf: Record<PreAuthLimit, keyof PreAuthRates> = {
  token_requests_per_address: "tokenRequestsPerMinutePerAddress",
  token_requests_per_agent: "tokenRequestsPerMinutePerAgent",
  anonymous_calls_per_address: "anonymousCallsPerMinutePerAddress",
};

const refusalOf: Record<PreAuthLimit, string> = {
  token_requests_per_address: "too many token requests from your address",
  token_requests_per_agent: "too many token requests for this agent id",
  anonymous_calls_per_address: "too many calls without a credential from your address: send 'Authorization: Bearer <token>'",
};

/** Not a policy rule, but the counters want a reference for every check. */
const GATEWAY_REF = { policyId: "gateway", policyName: "pre-authentication limits", version: 0, rule: 0 } as const;

/**
 * Token buckets for callers who have not proved who they are yet, on the same counters as policy
 * limits: in-process by default, shared by every instance when they are Redis-backed.
 */
export class PreAuthLimiter {
  constructor(private readonly o: { counters: Counters; now: () => number; rates: PreAuthRates }) {}

  /**
   * Takes one request from `limit`'s bucket for `subject` (an address key, an agent id).
   * @throws GatewayError rate_limited, with retryAfterSeconds; service_unavailable when shared
   *   counters are unreachable and REDIS_FAILURE_MODE=closed
   */
  async take(limit: PreAuthLimit, subject: string): Promise<void> {
    const perMinute = this.o.rates[rateOf[limit]];
    if (perMinute <= 0) return;
    // Hashed: subjects come from callers, keys must stay short and plain.
    const key = `preauth:${limit}:${hash("sha256", subject, "base64url").slice(0, 22)}`;
    const check: LimitCheck = { kind: "rate", key, ref: GATEWAY_REF, limit: perMinute, perSecond: perMinute / 60 };
    const outcome = await this.o.counters.consume([check], this.o.now());
    if (!outcome.ok) {
      throw new GatewayError("rate_limited", `${refusalOf[limit]}: retry in ${outcome.retryAfterSeconds} s`, {
        retryAfterSeconds: outcome.retryAfterSeconds,
        details: { limit },
      });
    }
  }
}
