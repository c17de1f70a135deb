import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { GatewayError } from "../errors/index.js";

/** Reads the bearer credential from the Authorization header, if any. */
export function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** A constant-time check of the admin key: both sides are hashed first so lengths leak nothing. */
export function createAdminGuard(adminKey: string): (request: FastifyRequest) => Promise<void> {
  const expected = createHash("sha256").update(adminKey).digest();
  return async (request) => {
    const presented = bearerOf(request);
    const actual = createHash("sha256").update(presented ?? "").digest();
    if (presented === undefined || !timingSafeEqual(expected, actual)) {
      throw new GatewayError("admin_unauthorized", "this route needs 'Authorization: Bearer <admin key>' (GATEWAY_ADMIN_KEY or DATA_DIR/admin.key)");
    }
  };
}
