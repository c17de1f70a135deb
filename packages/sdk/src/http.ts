import { GatewayClientError } from "./errors.js";

/** The `fetch` the SDK uses; tests and proxies may hand in their own. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface HttpAnswer<T> {
  body: T;
  headers: Headers;
  status: number;
}

/** The gateway's error body: `{"error": {code, message, correlationId, details?}}`. */
interface ErrorBody {
  error?: { code?: string; message?: string; correlationId?: string; details?: Record<string, unknown> };
}

/** Sends one JSON request to the gateway; a non-2xx answer becomes a GatewayClientError with the gateway's code. */
export async function requestJson<T>(
  fetchImpl: FetchLike,
  baseUrl: string,
  method: string,
  path: string,
  auth: string | undefined,
  body?: unknown,
  options: RequestOptions = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  if (auth !== undefined) headers.authorization = `Bearer ${auth}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (options.signal !== undefined) init.signal = options.signal;
  return answerOf<T>(await send(fetchImpl, new URL(path, baseUrl), init));
}

/** `fetch`, with a network failure (no answer at all) turned into `network_error`. */
export async function send(fetchImpl: FetchLike, url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetchImpl(url, init);
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw new GatewayClientError(
      "network_error",
      `no answer from ${url.origin}: ${err instanceof Error ? err.message : String(err)}`,
      0,
      undefined,
      undefined,
      undefined,
      { cause: err },
    );
  }
}

/** Reads an answer: the parsed JSON body, or the gateway's error. */
export async function answerOf<T>(response: Response): Promise<HttpAnswer<T>> {
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as ErrorBody | undefined)?.error;
    throw new GatewayClientError(
      error?.code ?? "http_error",
      error?.message ?? `HTTP ${response.status}`,
      response.status,
      error?.correlationId ?? response.headers.get("x-correlation-id") ?? undefined,
      error?.details,
      retryAfterSecondsOf(response.headers),
    );
  }
  return { body: parsed as T, headers: response.headers, status: response.status };
}

/** `Retry-After` in seconds (delta-seconds or an HTTP date), if present and sensible. */
export function retryAfterSecondsOf(headers: Headers, now = Date.now()): number | undefined {
  const raw = headers.get("retry-after");
  if (raw === null) return undefined;
  const seconds = /^\d+$/.test(raw.trim()) ? Number(raw) : (Date.parse(raw) - now) / 1000;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
