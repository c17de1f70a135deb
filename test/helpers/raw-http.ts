import net from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: any;
}

/**
 * Sends `request` byte for byte on a fresh TCP connection and reads the answer until the server
 * closes the connection or a complete response (by Content-Length) has arrived. For requests
 * that fetch or undici would refuse to send (bare CR, CL+TE, bad methods, oversized headers).
 */
export function rawRequest(baseUrl: string, request: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      const text = Buffer.concat(chunks).toString("utf8");
      const headerEnd = text.indexOf("\r\n\r\n");
      if (headerEnd < 0) {
        settled = true;
        socket.destroy();
        reject(new Error(`no complete response: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const [statusLine, ...lines] = text.slice(0, headerEnd).split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = text.slice(headerEnd + 4);
      const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
      if (length !== undefined && Buffer.byteLength(body) < length && !socket.destroyed && !socket.readableEnded) return; // wait for more
      settled = true;
      socket.destroy();
      let json: any;
      try {
        json = JSON.parse(length === undefined ? body : body.slice(0, length));
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body, json });
    };
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      if (!settled) {
        settled = true;
        reject(new Error("no answer before the timeout"));
      }
    });
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      finish();
    });
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", (err) => {
      if (chunks.length > 0) finish();
      else if (!settled) {
        settled = true;
        reject(err);
      }
    });
    socket.write(request);
  });
}
