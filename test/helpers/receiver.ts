import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP server that records every request it gets (webhooks, callbacks) and answers 200. */
export async function startReceiver(): Promise<{
  url: string;
  received: Received[];
  waitFor(match: (r: Received) => boolean, deadlineMs?: number): Promise<Received>;
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      received.push({ path: req.url ?? "/", headers: req.headers, body });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    /** Polls (no fixed sleep) until a matching request arrived. */
    async waitFor(match, deadlineMs = 10_000) {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        const found = received.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`nothing matching arrived; got ${received.map((r) => r.path).join(", ")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
