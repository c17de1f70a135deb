import { Agent, request, type Dispatcher } from "undici";
import { GatewayError } from "../errors/index.js";
import { connectionFailure, flattenHeaders, readCapped } from "../net/outbound.js";
import type { InvokeContext, UpstreamReply } from "../proxy/catalog.js";

const RETRYABLE_STATUSES = new Set([500, 502, 503, 504]);
const MAX_API_RESPONSE_BYTES = 16 * 1024 * 1024;

/** What the upstream said went wrong, in its own words (SerpAPI, OpenAI and Google shapes). */
function upstreamMessage(body: unknown): string | undefined {
  if (body === null || typeof body !== "object") return typeof body === "string" && body.length > 0 ? body : undefined;
  const b = body as { error?: unknown; message?: unknown };
  if (typeof b.error === "string") return b.error;
  if (b.error && typeof b.error === "object" && typeof (b.error as { message?: unknown }).message === "string") return (b.error as { message: string }).message;
  return typeof b.message === "string" ? b.message : undefined;
}

function retryAfterOf(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(Math.ceil(seconds), 3600);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.min(3600, Math.ceil((date - Date.now()) / 1000)));
}

/**
 * Maps an upstream's non-2xx answer to the gateway's codes: a 4xx the request caused stays a
 * client error with the upstream's status (it never moves a breaker); a rejected credential, a 429
 * and 5xx are upstream failures, the retryable ones marked so.
 */
export function upstreamFailure(tool: string, status: number, body: unknown, headers: Record<string, string> = {}): GatewayError {
  const said = upstreamMessage(body)?.slice(0, 300);
  const suffix = said === undefined ? "" : `: ${said}`;
  if (status === 401 || status === 403) {
    return new GatewayError("upstream_error", `${tool} refused the gateway's stored credential (${status})${suffix}; an admin should check or rotate it`, {
      details: { upstreamStatus: status, reason: "credential_rejected", retryable: false },
    });
  }
  if (status === 429) {
    const retryAfterSeconds = retryAfterOf(headers["retry-after"]);
    return new GatewayError("upstream_error", `${tool} is rate limiting the gateway (429)${suffix}`, {
      status: 503,
      details: { upstreamStatus: 429, reason: "upstream_rate_limited", retryable: true, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) },
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
  }
  if (status >= 500) {
    return new GatewayError("upstream_error", `${tool} failed (${status})${suffix}`, {
      details: { upstreamStatus: status, reason: "upstream_5xx", retryable: RETRYABLE_STATUSES.has(status) },
    });
  }
  return new GatewayError("upstream_client_error", `${tool} rejected the request (${status})${suffix}`, {
    status: status >= 400 && status < 500 ? status : 502,
    details: { upstreamStatus: status },
  });
}

/**
 * An answer's body, at most `maxBytes`: read whole by undici when its declared length fits (undici
 * reads exactly that many bytes), through the capped reader otherwise (chunked, or too big).
 */
async function readBody(response: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers["content-length"]);
  if (Number.isInteger(declared) && declared >= 0 && declared <= maxBytes) return Buffer.from(await response.body.arrayBuffer());
  return (await readCapped(response.body, maxBytes)).buffer;
}

/** The pooled client adapters use for operator-configured API base URLs (SerpAPI, OpenAI, Gmail). */
export class ApiClient {
  private readonly agent: Agent;

  constructor(connections = 128) {
    this.agent = new Agent({ connections, keepAliveTimeout: 10_000, pipelining: 1 });
  }

  /** Sends a request and parses a JSON answer; non-2xx becomes the mapped GatewayError. */
  /**
   * Sends a request carrying the call's correlation id, trace context and abort signal, and parses a
   * JSON answer; non-2xx becomes the mapped GatewayError. `bearer` sends the credential as
   * `Authorization: Bearer` (adapters that put it elsewhere, such as a query key, do so in the URL).
   */
  async json(tool: string, url: URL, init: { method: "GET" | "POST"; body?: unknown; bearer?: boolean }, ctx: InvokeContext): Promise<UpstreamReply> {
    const headers: Record<string, string> = { accept: "application/json", "x-correlation-id": ctx.correlationId };
    if (ctx.traceparent !== undefined) headers.traceparent = ctx.traceparent;
    if (init.bearer) headers.authorization = `Bearer ${ctx.credential ?? ""}`;
    let payload: string | undefined;
    if (init.body !== undefined) {
      payload = JSON.stringify(init.body);
      headers["content-type"] = "application/json";
    }
    let response;
    try {
      response = await request(url, {
        method: init.method,
        headers,
        signal: ctx.signal,
        dispatcher: this.agent,
        ...(payload === undefined ? {} : { body: payload }),
      });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw connectionFailure(url.host, err);
    }
    const raw = await readBody(response, MAX_API_RESPONSE_BYTES);
    const text = raw.toString("utf8");
    let body: unknown = text;
    try {
      body = text.length === 0 ? null : JSON.parse(text);
    } catch {
      // not JSON: kept as text for the error message
    }
    const responseHeaders = flattenHeaders(response.headers);
    if (response.statusCode < 200 || response.statusCode >= 300) throw upstreamFailure(tool, response.statusCode, body, responseHeaders);
    if (typeof body === "string") {
      throw new GatewayError("upstream_error", `${tool} answered with something that is not JSON`, {
        details: { upstreamStatus: response.statusCode, reason: "bad_payload", retryable: false },
      });
    }
    return { status: response.statusCode, body, bytes: raw.length, headers: responseHeaders, ...(raw.length === 0 ? {} : { raw }) };
  }

  /**
   * Like `json`, but a 2xx answer is returned as it arrives (`reply.stream`, e.g. server-sent events)
   * instead of being read whole; non-2xx is read and mapped like any failure. Destroying the stream
   * (the client went away) aborts the upstream request.
   */
  async stream(tool: string, url: URL, init: { method: "POST"; body: unknown; bearer?: boolean }, ctx: InvokeContext): Promise<UpstreamReply> {
    const headers: Record<string, string> = { accept: "text/event-stream", "content-type": "application/json", "x-correlation-id": ctx.correlationId };
    if (ctx.traceparent !== undefined) headers.traceparent = ctx.traceparent;
    if (init.bearer) headers.authorization = `Bearer ${ctx.credential ?? ""}`;
    let response;
    try {
      response = await request(url, { method: init.method, headers, signal: ctx.signal, dispatcher: this.agent, body: JSON.stringify(init.body) });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw connectionFailure(url.host, err);
    }
    const responseHeaders = flattenHeaders(response.headers);
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const { buffer } = await readCapped(response.body, MAX_API_RESPONSE_BYTES);
      let body: unknown = buffer.toString("utf8");
      try {
        body = JSON.parse(body as string);
      } catch {
        // not JSON: kept as text for the error message
      }
      throw upstreamFailure(tool, response.statusCode, body, responseHeaders);
    }
    return { status: response.statusCode, body: null, bytes: 0, headers: responseHeaders, stream: response.body };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
