import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError } from "../../errors/index.js";
import { AUTHENTICATED_BY_HANDLER } from "../auth.js";
import type { IdentityService } from "../../identity/index.js";
import {
  authorizationServerMetadata,
  OAuthError,
  oauthUrls,
  parseForm,
  protectedResourceMetadata,
  readClientCredentialsRequest,
  toOAuthError,
  tokenEndpointAudiences,
} from "../../oauth/index.js";

const HOST = /^[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?$/;

/**
 * The URL this request reached the gateway at: GATEWAY_PUBLIC_URL when set, else the request's
 * scheme and Host (checked, so a forged Host cannot inject anything into the metadata).
 * @throws GatewayError invalid_request on a malformed Host
 */
export function publicBaseUrl(request: FastifyRequest, configured: string | undefined): string {
  if (configured !== undefined) return configured;
  const host = request.host;
  if (typeof host !== "string" || !HOST.test(host)) throw new GatewayError("invalid_request", "the Host header is missing or malformed");
  return `${request.protocol}://${host}`;
}

/**
 * OAuth 2.1 for agents, the sign-in MCP clients expect: protected resource metadata (RFC 9728),
 * authorization server metadata (RFC 8414) and `POST /oauth/token` (client_credentials with a
 * private_key_jwt client assertion, RFC 7523). The token is the one `/api/tokens` issues: the
 * identity service's `issueToken` does the proof of possession for both.
 */
export function registerOAuthRoutes(
  app: FastifyInstance,
  deps: { identity: IdentityService; publicUrl: string | undefined; scopes: () => string[]; now: () => number },
) {
  const base = (request: FastifyRequest) => publicBaseUrl(request, deps.publicUrl);

  const prm = async (request: FastifyRequest) => protectedResourceMetadata(base(request), deps.scopes());
  // Public by nature, like the JWKS: MCP clients read them before they have any credential.
  app.get("/.well-known/oauth-protected-resource", prm);
  // RFC 9728 §3.1: the well-known URL of a resource with a path inserts the path after it.
  app.get("/.well-known/oauth-protected-resource/mcp", prm);
  app.get("/.well-known/oauth-authorization-server", async (request) => authorizationServerMetadata(base(request), deps.scopes()));

  app.register(async (scope) => {
    // RFC 6749 errors here, never the gateway's own error shape.
    scope.setErrorHandler((err, request, reply) => {
      const statusCode = (err as { statusCode?: number }).statusCode;
      const oauth =
        err instanceof OAuthError || err instanceof GatewayError
          ? toOAuthError(err)
          : typeof statusCode === "number" && statusCode >= 400 && statusCode < 500
            ? new OAuthError(
                "invalid_request",
                statusCode === 413
                  ? "the request body is too large"
                  : statusCode === 415
                    ? "send the token request as application/x-www-form-urlencoded"
                    : "malformed token request",
              )
            : toOAuthError(err);
      if (oauth.error === "server_error") request.log.error({ err, correlationId: request.id }, "token endpoint error");
      request.logFields.errorCode = oauth.error;
      return reply.code(oauth.status).header("cache-control", "no-store").header("pragma", "no-cache").send(oauth.body());
    });
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_request, body, done) => done(null, body));
    scope.addContentTypeParser("*", { parseAs: "string" }, (_request, _body, done) =>
      done(new OAuthError("invalid_request", "send the token request as application/x-www-form-urlencoded")),
    );

    scope.post("/oauth/token", { config: AUTHENTICATED_BY_HANDLER }, async (request, reply) => {
      const origin = base(request);
      const form = parseForm(typeof request.body === "string" ? request.body : "");
      const urls = oauthUrls(origin);
      const call = readClientCredentialsRequest(form, [urls.mcpResource, urls.issuer]);
      request.logFields.agentId = call.agentId.slice(0, 128);
      const issued = await deps.identity.issueToken(
        { agentId: call.agentId, assertion: call.assertion, scopes: call.scopes, ...(call.intent === undefined ? {} : { intent: call.intent }) },
        { extraAudiences: tokenEndpointAudiences(origin) },
      );
      reply.header("cache-control", "no-store").header("pragma", "no-cache");
      return {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: Math.max(0, Math.round((issued.expiresAt - deps.now()) / 1000)),
        scope: issued.scopes.join(" "),
      };
    });

    scope.get("/oauth/authorize", { config: AUTHENTICATED_BY_HANDLER }, async () => {
      throw new OAuthError(
        "unsupported_response_type",
        "this gateway issues tokens with grant_type=client_credentials at /oauth/token only (no authorization code flow)",
      );
    });
  });
}
