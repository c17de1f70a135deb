import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SERPAPI_ENGINES } from "../tools/serpapi/index.js";

/**
 * Real HTTP servers that speak the shapes of the upstream APIs the gateway fronts: SerpAPI's
 * `/search.json`, OpenAI's `/v1/chat/completions`, Gmail's `users.messages.send` and plain web
 * pages. Their errors look like the real ones. The gateway starts one in `UPSTREAM_MODE=mock`;
 * tests and benchmarks start their own and point live mode at it.
 */

export type MockApi = "serpapi" | "openai" | "gmail" | "web";

export interface MockLatency {
  /** Fixed delay before answering, per API. */
  baseMs: number;
  /** Extra uniform random delay in [0, jitterMs). */
  jitterMs: number;
}

/** A failure the test (or the chaos harness) asks for, at the server itself. */
export interface MockFault {
  /** `down` resets connections; `status` answers with `status`; `hang` never answers. */
  mode: "down" | "status" | "hang";
  status?: number;
  /** How many requests it applies to; unset = until cleared. */
  remaining?: number;
  retryAfterSeconds?: number;
}

export interface MockUpstreamOptions {
  host?: string;
  port?: number;
  latency?: Partial<Record<MockApi, MockLatency>>;
  /** Credentials the mock accepts; unset = any non-empty credential is accepted. */
  validKeys?: Partial<Record<Exclude<MockApi, "web">, string>>;
}

export interface MockUpstreams {
  url: string;
  /** Requests received per API (everything the server saw, faults included). */
  stats(): Record<MockApi, number> & { gmailSent: number; openaiStreamsOpen: number; openaiStreamsAborted: number };
  setFault(api: MockApi, fault: MockFault | undefined): void;
  setLatency(api: MockApi, latency: MockLatency): void;
  close(): Promise<void>;
}

export const OPENAI_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-3.5-turbo", "o3-mini"];
const MAX_BODY = 2 * 1024 * 1024;

function apiOf(url: URL): MockApi {
  if (url.pathname === "/search.json" || url.pathname === "/search") return "serpapi";
  if (url.pathname.startsWith("/v1/")) return "openai";
  if (url.pathname.startsWith("/gmail/")) return "gmail";
  return "web";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const digest = (text: string) => createHash("sha256").update(text).digest("hex");

export async function startMockUpstreams(options: MockUpstreamOptions = {}): Promise<MockUpstreams> {
  const counts: Record<MockApi, number> & { gmailSent: number; openaiStreamsOpen: number; openaiStreamsAborted: number } = {
    serpapi: 0,
    openai: 0,
    gmail: 0,
    web: 0,
    gmailSent: 0,
    openaiStreamsOpen: 0,
    openaiStreamsAborted: 0,
  };
  const faults = new Map<MockApi, MockFault>();
  const latency = new Map<MockApi, MockLatency>(Object.entries(options.latency ?? {}) as [MockApi, MockLatency][]);
  const sockets = new Set<import("node:net").Socket>();

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: "mock upstream failure" });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? "/", "http://mock");
    const api = apiOf(url);
    counts[api] += 1;
    const fault = faults.get(api);
    if (fault) {
      if (fault.remaining !== undefined && --fault.remaining <= 0) faults.delete(api);
      if (fault.mode === "down") return void req.socket.destroy();
      if (fault.mode === "hang") return;
      const status = fault.status ?? 500;
      if (fault.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(fault.retryAfterSeconds));
      sendJson(res, status, errorShape(api, status, "injected failure"));
      return;
    }
    const lat = latency.get(api);
    if (lat && lat.baseMs + lat.jitterMs > 0) await sleep(lat.baseMs + Math.random() * lat.jitterMs);
    const body = await readBody(req);
    if (body === undefined) {
      sendJson(res, 413, errorShape(api, 413, "request body too large"));
      return;
    }
    switch (api) {
      case "serpapi": {
        serpapi(url, res);
        return;
      }
      case "openai": {
        openai(req, url, body, res);
        return;
      }
      case "gmail": {
        gmail(req, url, body, res);
        return;
      }
      default:
        return web(req, url, res);
    }
  }

  function keyOk(api: Exclude<MockApi, "web">, presented: string | undefined): boolean {
    if (!presented) return false;
    const valid = options.validKeys?.[api];
    return valid === undefined || valid === presented;
  }

  function serpapi(url: URL, res: http.ServerResponse) {
    const apiKey = url.searchParams.get("api_key") ?? undefined;
    if (!keyOk("serpapi", apiKey)) {
      sendJson(res, 401, { error: "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key" });
      return;
    }
    const q = url.searchParams.get("q");
    if (!q) {
      sendJson(res, 400, { error: "Missing query `q` parameter." });
      return;
    }
    const engine = url.searchParams.get("engine") ?? "google";
    if (!SERPAPI_ENGINES.includes(engine)) {
      sendJson(res, 400, { error: `Unsupported \`${engine}\` search engine.` });
      return;
    }
    const num = Math.min(Number(url.searchParams.get("num") ?? 10) || 10, 100);
    const seed = digest(`${engine}:${q}`);
    const id = seed.slice(0, 24);
    const now = new Date().toISOString().replace("T", " ").replace(/\..+/, " UTC");
    sendJson(res, 200, {
      search_metadata: {
        id,
        status: "Success",
        json_endpoint: `https://serpapi.com/searches/${id}.json`,
        created_at: now,
        processed_at: now,
        total_time_taken: 0.42,
      },
      search_parameters: { engine, q, ...(url.searchParams.get("location") ? { location_requested: url.searchParams.get("location") } : {}), num },
      search_information: {
        query_displayed: q,
        total_results: parseInt(seed.slice(0, 6), 16),
        time_taken_displayed: 0.31,
        organic_results_state: "Results for exact spelling",
      },
      organic_results: Array.from({ length: Math.min(num, 10) }, (_, i) => ({
        position: i + 1,
        title: `${q} — result ${i + 1}`,
        link: `https://example.com/${seed.slice(i, i + 8)}/${i + 1}`,
        displayed_link: `example.com › ${seed.slice(i, i + 8)}`,
        snippet: `A page about ${q}. Result ${i + 1} of the ${engine} engine.`,
      })),
    });
  }

  function openai(req: http.IncomingMessage, url: URL, body: string, res: http.ServerResponse) {
    const auth = req.headers.authorization;
    const key = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    if (!keyOk("openai", key)) {
      // The real API echoes (part of) the key it was given: the gateway must scrub it.
      sendJson(res, 401, {
        error: {
          message: `Incorrect API key provided: ${key ?? ""}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          type: "invalid_request_error",
          param: null,
          code: "invalid_api_key",
        },
      });
      return;
    }
    if (url.pathname === "/v1/models" && req.method === "GET") {
      sendJson(res, 200, { object: "list", data: OPENAI_MODELS.map((id) => ({ id, object: "model", created: 1_715_367_049, owned_by: "system" })) });
      return;
    }
    if (url.pathname !== "/v1/chat/completions" || req.method !== "POST") {
      sendJson(res, 404, { error: { message: `Invalid URL (${req.method} ${url.pathname})`, type: "invalid_request_error", param: null, code: null } });
      return;
    }
    let parsed: { model?: unknown; messages?: unknown; max_tokens?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      sendJson(res, 400, { error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error", param: null, code: null } });
      return;
    }
    if (typeof parsed.model !== "string") {
      sendJson(res, 400, { error: { message: "you must provide a model parameter", type: "invalid_request_error", param: null, code: null } });
      return;
    }
    if (!OPENAI_MODELS.includes(parsed.model)) {
      sendJson(res, 404, {
        error: {
          message: `The model \`${parsed.model}\` does not exist or you do not have access to it.`,
          type: "invalid_request_error",
          param: null,
          code: "model_not_found",
        },
      });
      return;
    }
    if (!Array.isArray(parsed.messages) || parsed.messages.length === 0) {
      sendJson(res, 400, { error: { message: "[] is too short - 'messages'", type: "invalid_request_error", param: "messages", code: null } });
      return;
    }
    const last = parsed.messages[parsed.messages.length - 1] as { content?: unknown };
    const prompt = typeof last?.content === "string" ? last.content : "";
    const maxTokens = typeof parsed.max_tokens === "number" ? parsed.max_tokens : 256;
    const words = `This is a mock answer to: ${prompt}`.split(/\s+/).slice(0, Math.max(1, maxTokens));
    const promptTokens = Math.ceil(JSON.stringify(parsed.messages).length / 4);
    if (parsed.stream === true) return void streamChat(res, parsed.model, words, maxTokens, promptTokens, parsed.stream_options?.include_usage === true);
    sendJson(res, 200, {
      id: `chatcmpl-${randomBytes(12).toString("base64url")}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: parsed.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: words.join(" "), refusal: null },
          logprobs: null,
          finish_reason: words.length >= maxTokens ? "length" : "stop",
        },
      ],
      usage: { prompt_tokens: promptTokens, completion_tokens: words.length, total_tokens: promptTokens + words.length },
      system_fingerprint: "fp_mock",
    });
  }

  /** OpenAI's streamed chat: one `chat.completion.chunk` event per word, a pause between each (the mock's latency), then usage if asked and `[DONE]`. */
  async function streamChat(res: http.ServerResponse, model: string, words: string[], maxTokens: number, promptTokens: number, includeUsage: boolean) {
    const id = `chatcmpl-${randomBytes(12).toString("base64url")}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_mock", choices, ...extra })}\n\n`;
    const lat = latency.get("openai");
    const pauseMs = Math.max(5, lat ? lat.baseMs / 4 : 5);
    counts.openaiStreamsOpen += 1;
    let closed = false;
    res.on("close", () => {
      counts.openaiStreamsOpen -= 1;
      if (!res.writableFinished) counts.openaiStreamsAborted += 1;
      closed = true;
    });
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    res.write(chunk([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]));
    for (const [i, word] of words.entries()) {
      await sleep(pauseMs);
      if (closed) return;
      res.write(chunk([{ index: 0, delta: { content: i === 0 ? word : ` ${word}` }, logprobs: null, finish_reason: null }]));
    }
    await sleep(pauseMs);
    if (closed) return;
    res.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: words.length >= maxTokens ? "length" : "stop" }]));
    if (includeUsage)
      res.write(chunk([], { usage: { prompt_tokens: promptTokens, completion_tokens: words.length, total_tokens: promptTokens + words.length } }));
    res.end("data: [DONE]\n\n");
  }

  function gmail(req: http.IncomingMessage, url: URL, body: string, res: http.ServerResponse) {
    const auth = req.headers.authorization;
    const key = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    if (!keyOk("gmail", key)) {
      sendJson(res, 401, {
        error: {
          code: 401,
          message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
          status: "UNAUTHENTICATED",
        },
      });
      return;
    }
    if (!/^\/gmail\/v1\/users\/[^/]+\/messages\/send$/.test(url.pathname) || req.method !== "POST") {
      sendJson(res, 404, { error: { code: 404, message: "Requested entity was not found.", status: "NOT_FOUND" } });
      return;
    }
    let raw: unknown;
    try {
      raw = (JSON.parse(body) as { raw?: unknown }).raw;
    } catch {
      sendJson(res, 400, { error: { code: 400, message: "Invalid JSON payload received.", status: "INVALID_ARGUMENT" } });
      return;
    }
    if (typeof raw !== "string" || raw === "") {
      sendJson(res, 400, {
        error: { code: 400, message: "'raw' RFC822 payload message string or uploading message via /upload/* URL required", status: "INVALID_ARGUMENT" },
      });
      return;
    }
    const message = Buffer.from(raw, "base64url").toString("utf8");
    if (!/^To: .*@/im.test(message)) {
      sendJson(res, 400, { error: { code: 400, message: "Invalid To header", status: "INVALID_ARGUMENT" } });
      return;
    }
    counts.gmailSent += 1;
    const id = digest(message + randomBytes(8).toString("hex")).slice(0, 16);
    sendJson(res, 200, { id, threadId: id, labelIds: ["SENT"] });
  }

  async function web(req: http.IncomingMessage, url: URL, res: http.ServerResponse) {
    const host = req.headers.host ?? "mock";
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) {
      sendText(res, Number(status[1]), `status ${status[1]}`, "text/plain");
      return;
    }
    const slow = /^\/slow\/(\d+)$/.exec(url.pathname);
    if (slow) await sleep(Math.min(Number(slow[1]), 60_000));
    const bytes = /^\/bytes\/(\d+)$/.exec(url.pathname);
    if (bytes) {
      sendText(res, 200, "x".repeat(Math.min(Number(bytes[1]), 50_000_000)), "text/plain");
      return;
    }
    if (url.pathname === "/redirect") {
      res.writeHead(302, { location: url.searchParams.get("to") ?? "/" });
      return res.end();
    }
    if (url.pathname === "/headers") {
      sendJson(res, 200, { headers: req.headers });
      return;
    }
    if (url.pathname === "/binary") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(Buffer.from([0, 1, 2, 3, 254, 255]));
    }
    const title = `${host}${url.pathname}`.replace(/[<>&"]/g, "");
    sendText(
      res,
      200,
      `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><p>Mock page served for ${req.method}.</p></body></html>`,
      "text/html; charset=utf-8",
    );
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    stats: () => ({ ...counts }),
    setFault: (api, fault) => (fault === undefined ? faults.delete(api) : faults.set(api, { ...fault })),
    setLatency: (api, l) => latency.set(api, l),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function errorShape(api: MockApi, status: number, message: string): unknown {
  if (api === "serpapi") return { error: message };
  if (api === "openai") return { error: { message, type: status === 429 ? "rate_limit_exceeded" : "server_error", param: null, code: null } };
  if (api === "gmail") return { error: { code: status, message, status: status === 429 ? "RESOURCE_EXHAUSTED" : "INTERNAL" } };
  return { error: message };
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: http.ServerResponse, status: number, text: string, type: string) {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}
