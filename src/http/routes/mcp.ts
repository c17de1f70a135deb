import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { errorBody, isGatewayError } from "../../errors/index.js";
import type { IdentityService, VerifiedToken } from "../../identity/index.js";
import type { createMcpServer, McpCaller, McpServerDeps } from "../../mcp/server.js";
import { AUTHENTICATED_BY_HANDLER, bearerOf } from "../auth.js";
import { publicBaseUrl } from "./oauth.js";

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
/** Request headers the Streamable HTTP transport reads. */
const FORWARDED_HEADERS = ["accept", "content-type", "mcp-protocol-version", "mcp-session-id", "last-event-id"] as const;

export interface McpRouteDeps extends McpServerDeps {
  identity: IdentityService;
  publicUrl: string | undefined;
}

/**
 * The MCP SDK's server side (and zod, which it brings), loaded by the first `/mcp` request: ~12 MB
 * of RSS that a gateway whose agents never use MCP does not carry.
 */
let serverSdk: Promise<{ Transport: typeof WebStandardStreamableHTTPServerTransport; createMcpServer: typeof createMcpServer }> | undefined;
function loadServerSdk() {
  serverSdk ??= Promise.all([import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"), import("../../mcp/server.js")]).then(
    ([transport, server]) => ({ Transport: transport.WebStandardStreamableHTTPServerTransport, createMcpServer: server.createMcpServer }),
  );
  return serverSdk;
}

/**
 * `/mcp`: the Model Context Protocol door, Streamable HTTP in stateless mode on the official SDK.
 * Every request carries its bearer token, so any instance behind a load balancer serves any
 * request of a session. No or bad token: 401 with the `WWW-Authenticate` challenge that sends MCP
 * clients to the OAuth metadata. The SDK parses and answers JSON-RPC (including -32700/-32600/-32601).
 */
export function registerMcpRoutes(app: FastifyInstance, deps: McpRouteDeps) {
  app.register(async (scope) => {
    // The body stays raw here: JSON is parsed for the SDK, anything else goes to the SDK as is, so
    // a malformed message gets its JSON-RPC error (-32700), never the gateway's 400 shape.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));

    // The handler checks the token itself: its refusal is the MCP authorization challenge.
    scope.post("/mcp", { config: AUTHENTICATED_BY_HANDLER }, async (request, reply) => {
      const token = await authenticate(request, reply);
      if (token === undefined) return reply;
      const caller: McpCaller = { token, rawToken: bearerOf(request)!, correlationId: request.id, logFields: request.logFields };
      const traceparent = request.headers.traceparent;
      if (typeof traceparent === "string" && TRACEPARENT.test(traceparent)) caller.traceparent = traceparent;
      const sdk = await loadServerSdk();
      const server = sdk.createMcpServer(deps, caller);
      // No sessionIdGenerator: stateless, a fresh transport per request.
      const transport = new sdk.Transport({ enableJsonResponse: true });
      let response: Response;
      try {
        await server.connect(transport);
        response = await transport.handleRequest(...toWebRequest(request));
      } catch (err) {
        await server.close().catch(() => undefined);
        throw err;
      }
      // In JSON-response mode the transport holds nothing once it has answered (no stream, no
      // timer), so the per-request server and transport are left to the garbage collector:
      // closing them would only build a "connection closed" error for handlers that are all done.
      reply.code(response.status);
      response.headers.forEach((value, name) => {
        if (name !== "content-length") reply.header(name, value);
      });
      const body = await bytesOf(response);
      return reply.send(body === undefined || body.length === 0 ? undefined : body);
    });

    // Stateless: no server-initiated stream to open and no session to end (MCP Streamable HTTP allows 405 for both).
    const notOffered = async (request: FastifyRequest, reply: FastifyReply) => {
      if ((await authenticate(request, reply)) === undefined) return reply;
      return reply
        .code(405)
        .header("allow", "POST")
        .type("application/json")
        .send({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed: this gateway serves MCP statelessly (POST only)" }, id: null });
    };
    scope.get("/mcp", { config: AUTHENTICATED_BY_HANDLER }, notOffered);
    scope.delete("/mcp", { config: AUTHENTICATED_BY_HANDLER }, notOffered);
  });

  /** Verifies the bearer token; on failure answers with the MCP authorization challenge and returns undefined. */
  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<VerifiedToken | undefined> {
    const raw = bearerOf(request);
    try {
      const token = await deps.identity.verifyAccessToken(raw);
      request.logFields.agentId = token.agentId;
      request.logFields.door = "mcp";
      return token;
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      const base = publicBaseUrl(request, deps.publicUrl);
      const challenge = [`Bearer resource_metadata="${base}/.well-known/oauth-protected-resource"`];
      if (raw !== undefined) challenge.push(`error="invalid_token"`, `error_description="${quotable(err.message)}"`);
      request.logFields.errorCode = err.code;
      reply.code(err.status).header("www-authenticate", challenge.join(", "));
      reply.send(errorBody(err, request.id));
      return undefined;
    }
  }
}

/**
 * The Fastify request as what the SDK transport takes: a Web Standard Request and, when the body is
 * JSON, the parsed body (a Request carrying the body would be read through a web stream again).
 * A body that is not JSON is handed over as is, so the SDK answers it with its own -32700.
 */
function toWebRequest(request: FastifyRequest): [Request, { parsedBody?: unknown }] {
  const raw = typeof request.body === "string" ? request.body : "";
  let parsedBody: unknown;
  try {
    parsedBody = JSON.parse(raw) as unknown;
  } catch {
    return [new Request(`http://gateway${request.url}`, { method: request.method, headers: forwardedHeaders(request), body: raw }), {}];
  }
  return [bodilessRequest(request), { parsedBody }];
}

function forwardedHeaders(request: FastifyRequest): Headers {
  const headers = new Headers();
  for (const name of FORWARDED_HEADERS) {
    const value = request.headers[name];
    if (typeof value === "string") headers.set(name, value);
  }
  return headers;
}

/**
 * The body already parsed, the Request the transport reads is only a method, a URL and the few
 * headers it looks at, and a client sends the same ones on every request: one Request per such
 * combination is built once and shared. A Request without a body holds nothing that reading it
 * uses up, and the transport only reads it (its headers, URL and method); building one costs a
 * Headers, an AbortSignal and their validation on every call otherwise. Bounded: emptied when full.
 */
const bodilessRequests = new Map<string, Request>();
const MAX_SHARED_REQUESTS = 64;

function bodilessRequest(request: FastifyRequest): Request {
  let key = `${request.method} ${request.url}`;
  for (const name of FORWARDED_HEADERS) {
    const value = request.headers[name];
    key += typeof value === "string" ? `\n${value}` : "\n\u0000";
  }
  let shared = bodilessRequests.get(key);
  if (shared === undefined) {
    shared = new Request(`http://gateway${request.url}`, { method: request.method, headers: forwardedHeaders(request) });
    if (bodilessRequests.size >= MAX_SHARED_REQUESTS) bodilessRequests.clear();
    bodilessRequests.set(key, shared);
  }
  return shared;
}

/**
 * The answer's bytes, straight through: decoding to a string only for Fastify to encode it again
 * costs twice. Read off the body stream by hand: the SDK's JSON answer is one chunk, which is used
 * as it is, where `arrayBuffer()` goes through undici's generic body reading and copies it again
 * (a third of the read's cost).
 */
async function bytesOf(response: Response): Promise<Buffer | undefined> {
  if (response.body === null) return undefined;
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Buffer[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** A value safe inside an RFC 7235 quoted-string. */
function quotable(text: string): string {
  return text
    .replace(/[^\x20-\x7e]/g, " ")
    .replace(/["\\]/g, "'")
    .slice(0, 200);
}
