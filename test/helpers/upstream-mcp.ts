import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

type Register = (server: McpServer) => void;

/**
 * A real MCP server built with the official SDK (stateful Streamable HTTP, one McpServer per
 * session), for the gateway to front. `failing` makes every HTTP request answer 500; `requireHeader`
 * refuses requests without that header value (401); `addTools` registers more tools on every live
 * session, which makes the SDK send `notifications/tools/list_changed`.
 */
export async function startUpstreamMcp(options: { name: string; tools: Register; requireHeader?: { name: string; value: string } }) {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; server: McpServer }>();
  const extra: Register[] = [];
  const seen: { headers: http.IncomingHttpHeaders; method: string }[] = [];
  const state = { failing: false };

  const newServer = () => {
    const server = new McpServer({ name: options.name, version: "1.0.0" }, { capabilities: { tools: { listChanged: true } } });
    options.tools(server);
    for (const add of extra) add(server);
    return server;
  };

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push({ headers: req.headers, method: req.method ?? "" });
    if (state.failing) {
      res.writeHead(500, { "content-type": "text/plain" }).end("upstream is failing");
      return;
    }
    if (options.requireHeader && req.headers[options.requireHeader.name] !== options.requireHeader.value) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "bad key" }));
      return;
    }
    const sessionId = req.headers["mcp-session-id"];
    let session = typeof sessionId === "string" ? sessions.get(sessionId) : undefined;
    if (session === undefined) {
      if (typeof sessionId === "string") {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
        return;
      }
      const server = newServer();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server });
        },
      });
      await server.connect(transport);
      session = { transport, server };
    }
    await session.transport.handleRequest(req, res);
  };
  // Node ignores what a request listener returns; a failure here fails the test through its client.
  const httpServer = http.createServer((req, res) => void onRequest(req, res));
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/mcp`,
    state,
    seen,
    /** Adds tools to every session (and to sessions yet to come): connected clients get list_changed. */
    addTools(register: Register) {
      extra.push(register);
      for (const { server } of sessions.values()) register(server);
    },
    async close() {
      for (const { server } of sessions.values()) await server.close().catch(() => undefined);
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
