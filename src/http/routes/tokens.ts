import type { FastifyInstance } from "fastify";
import type { IdentityService, Keyring } from "../../identity/index.js";
import { AGENT_ONLY, agentTokenOf, AUTHENTICATED_BY_HANDLER } from "../auth.js";
import { NO_CONTROL_CHARACTERS, PRINTABLE_ID } from "../schemas.js";

/** Token issue (proof of possession), revocation, introspection of one's own token, and the JWKS. */
export function registerTokenRoutes(app: FastifyInstance, deps: { identity: IdentityService; keyring: Keyring }) {
  const { identity, keyring } = deps;

  app.post(
    "/api/tokens",
    {
      // The signed assertion in the body is the credential; limited per address and agent id before it is checked.
      config: { ...AUTHENTICATED_BY_HANDLER, preAuthLimit: "token_request" },
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["agentId", "assertion", "scopes"],
          properties: {
            agentId: { type: "string", minLength: 1, maxLength: 128, pattern: PRINTABLE_ID },
            assertion: { type: "string", minLength: 1, maxLength: 16384 },
            scopes: { type: "array", minItems: 1, maxItems: 100, items: { type: "string", minLength: 3, maxLength: 130 } },
            intent: { type: "string", minLength: 1, maxLength: 128, pattern: NO_CONTROL_CHARACTERS },
            ttlSeconds: { type: "integer" },
          },
        },
      },
    },
    async (request, reply) => {
      const issued = await identity.issueToken(request.body as never);
      reply.code(201).header("cache-control", "no-store");
      return {
        token: issued.token,
        tokenType: "Bearer",
        tokenId: issued.tokenId,
        expiresAt: new Date(issued.expiresAt).toISOString(),
        scopes: issued.scopes,
        ...(issued.intent === undefined ? {} : { intent: issued.intent }),
      };
    },
  );

  app.post(
    "/api/tokens/:tokenId/revoke",
    { config: { role: "admin" }, schema: { params: { type: "object", properties: { tokenId: { type: "string", minLength: 1, maxLength: 128 } } } } },
    async (request) => {
      const tokenId = (request.params as { tokenId: string }).tokenId;
      await identity.revokeToken(tokenId);
      return { tokenId, revoked: true };
    },
  );

  /** Lets an agent check its own token: what the gateway sees in it. */
  app.get("/api/tokens/self", { config: AGENT_ONLY }, async (request, reply) => {
    const verified = agentTokenOf(request);
    if (verified.refreshRecommended) reply.header("x-token-refresh", "recommended");
    return {
      tokenId: verified.tokenId,
      agentId: verified.agentId,
      agentName: verified.agentName,
      role: verified.role,
      scopes: verified.scopes,
      intent: verified.intent ?? null,
      issuedAt: new Date(verified.issuedAt).toISOString(),
      expiresAt: new Date(verified.expiresAt).toISOString(),
      refreshRecommended: verified.refreshRecommended,
    };
  });

  app.get("/.well-known/jwks.json", async (_request, reply) => {
    reply.header("cache-control", "public, max-age=60");
    return keyring.jwks();
  });

  app.get("/api/admin/keys", { config: { role: "viewer" } }, async () => ({
    keys: keyring
      .list()
      .map((k) => ({ ...k, createdAt: new Date(k.createdAt).toISOString(), retiredAt: k.retiredAt === null ? null : new Date(k.retiredAt).toISOString() })),
  }));

  app.post("/api/admin/keys/rotate", { config: { role: "admin" } }, async () => ({ kid: await keyring.rotate() }));
}
