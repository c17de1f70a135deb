import { GatewayError } from "../../errors/index.js";
import type { GuardedHttpClient } from "../../net/outbound.js";
import type { InvokeContext, RoadAction, UpstreamReply } from "../../proxy/catalog.js";

/** Request headers an agent may set; anything else (cookies, auth, hop-by-hop) is refused by the schema. */
export const FETCH_REQUEST_HEADERS = ["accept", "accept-language", "user-agent", "if-none-match", "if-modified-since", "range", "cache-control"];
/** Response headers passed back; the rest (set-cookie and friends) stay at the gateway. */
const FETCH_RESPONSE_HEADERS = [
  "content-type",
  "content-length",
  "content-language",
  "last-modified",
  "etag",
  "cache-control",
  "expires",
  "location",
  "content-range",
];

export interface HttpFetchOptions {
  client: GuardedHttpClient;
  /** Hard cap on body bytes returned, whatever the caller asks. */
  maxBytes: number;
  maxRedirects: number;
}

function isTextual(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  return /^text\/|[/+](json|xml|javascript|x-www-form-urlencoded)\b/i.test(contentType);
}

async function fetchOnce(opts: HttpFetchOptions, method: "GET" | "HEAD", params: Record<string, unknown>, ctx: InvokeContext): Promise<UpstreamReply> {
  const headers: Record<string, string> = {
    "user-agent": "4runr-gateway/0.1 (+http_fetch)",
    "x-correlation-id": ctx.correlationId,
    ...(params.headers as Record<string, string> | undefined),
  };
  if (ctx.traceparent !== undefined) headers.traceparent = ctx.traceparent;
  const maxBytes = Math.min(typeof params.maxBytes === "number" ? params.maxBytes : opts.maxBytes, opts.maxBytes);
  // A caller's own timeout can only shorten the gateway's.
  const callerTimeout = typeof params.timeoutMs === "number" ? AbortSignal.timeout(params.timeoutMs) : undefined;
  const signal = callerTimeout === undefined ? ctx.signal : AbortSignal.any([ctx.signal, callerTimeout]);
  try {
    const response = await opts.client.request(String(params.url), {
      method,
      headers,
      signal,
      maxBytes,
      maxRedirects: params.followRedirects === false ? 0 : opts.maxRedirects,
      // Policy's url.* guards hold on every hop, not only on the URL the agent sent.
      ...(ctx.checkRedirect === undefined ? {} : { beforeRedirect: ctx.checkRedirect }),
    });
    const textual = isTextual(response.headers["content-type"]);
    const picked = Object.fromEntries(FETCH_RESPONSE_HEADERS.filter((h) => response.headers[h] !== undefined).map((h) => [h, response.headers[h]!]));
    return {
      status: 200,
      bytes: response.body.length,
      body: {
        status: response.status,
        url: response.url,
        redirects: response.redirects,
        headers: picked,
        ...(method === "HEAD"
          ? {}
          : { body: textual ? response.body.toString("utf8") : response.body.toString("base64"), bodyEncoding: textual ? "text" : "base64" }),
        bytes: response.body.length,
        truncated: response.truncated,
      },
    };
  } catch (err) {
    if (callerTimeout?.aborted && !ctx.signal.aborted) {
      throw new GatewayError("upstream_timeout", `${String(params.url).slice(0, 200)} did not answer within the requested ${String(params.timeoutMs)} ms`);
    }
    throw err;
  }
}

const schema = (method: "GET" | "HEAD") => ({
  type: "object",
  additionalProperties: false,
  required: ["url"],
  properties: {
    url: { type: "string", minLength: 8, maxLength: 4096, pattern: "^[hH][tT][tT][pP][sS]?://" },
    headers: {
      type: "object",
      propertyNames: { enum: FETCH_REQUEST_HEADERS },
      additionalProperties: { type: "string", maxLength: 1024, pattern: "^[^\\r\\n]*$" },
    },
    timeoutMs: { type: "integer", minimum: 100, maximum: 60_000 },
    followRedirects: { type: "boolean" },
    ...(method === "GET" ? { maxBytes: { type: "integer", minimum: 1, maximum: 64 * 1024 * 1024 } } : {}),
  },
});

/**
 * `http_fetch:get` and `http_fetch:head`: fetch a public web page. The URL is judged by the SSRF
 * guard (every redirect too); the site's status is data (`data.status`), not a gateway error.
 */
export function httpFetchTool(opts: HttpFetchOptions): RoadAction[] {
  return [
    {
      tool: "http_fetch",
      action: "get",
      hints: { title: "Fetch a web page", readOnly: true, openWorld: true },
      description: "GET a public URL. Returns {status, url, headers, body, bodyEncoding, bytes, truncated}.",
      paramsSchema: schema("GET"),
      idempotent: true,
      cacheable: true,
      cacheTtlSeconds: 60,
      timeoutMs: 15_000,
      needsCredential: false,
      invoke: (params, ctx) => fetchOnce(opts, "GET", params, ctx),
    },
    {
      tool: "http_fetch",
      action: "head",
      hints: { title: "Fetch a web page's headers", readOnly: true, openWorld: true },
      description: "HEAD a public URL. Returns {status, url, headers}.",
      paramsSchema: schema("HEAD"),
      idempotent: true,
      cacheable: false,
      timeoutMs: 15_000,
      needsCredential: false,
      invoke: (params, ctx) => fetchOnce(opts, "HEAD", params, ctx),
    },
  ];
}
