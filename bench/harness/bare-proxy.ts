import http from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

/**
 * The baseline: a bare Node reverse proxy (undici) that forwards the same tool calls to the same
 * mock upstream with no identity, policy, resilience, audit or metrics. The gateway's cost is
 * measured against it in the same run.
 */
export async function startBareProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: 256, pipelining: 1 });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const started = performance.now();
        try {
          const call = JSON.parse(Buffer.concat(chunks).toString()) as { tool: string; params: Record<string, unknown> };
          const p = call.params;
          let r;
          if (call.tool === "serpapi")
            r = await pool.request({ path: `/search.json?engine=google&q=${encodeURIComponent(String(p.q))}&api_key=bare`, method: "GET" });
          else if (call.tool === "openai")
            r = await pool.request({
              path: "/v1/chat/completions",
              method: "POST",
              headers: { authorization: "Bearer bare", "content-type": "application/json" },
              body: JSON.stringify(p),
            });
          else if (call.tool === "gmail_send")
            r = await pool.request({
              path: "/gmail/v1/users/me/messages/send",
              method: "POST",
              headers: { authorization: "Bearer bare", "content-type": "application/json" },
              body: JSON.stringify({ raw: Buffer.from(`To: ${String((p.to as string[])[0])}\r\nSubject: x\r\n\r\nx`).toString("base64url") }),
            });
          else r = await pool.request({ path: new URL(String(p.url)).pathname, method: "GET" });
          const text = await r.body.text();
          const upstreamMs = performance.now() - started;
          const body = JSON.stringify({
            data: r.headers["content-type"]?.toString().includes("json") ? (JSON.parse(text) as unknown) : { status: r.statusCode, body: text },
          });
          res.writeHead(r.statusCode < 400 ? 200 : 502, {
            "content-type": "application/json",
            "server-timing": `gateway;dur=${(performance.now() - started - upstreamMs).toFixed(3)}, upstream;dur=${upstreamMs.toFixed(3)}`,
          });
          res.end(body);
        } catch {
          res.writeHead(502, { "content-type": "application/json" });
          res.end('{"error":{"code":"upstream_error"}}');
        }
      })();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await pool.close();
    },
  };
}
