import dns from "node:dns";
import type { LookupAddress } from "node:dns";
import { Agent, request, type Dispatcher } from "undici";
import { GatewayError, isGatewayError } from "../errors/index.js";
import { AddressAllowList, checkUrlShape, isIpLiteral, isLocalLoopback, judgeAddress, ssrfBlocked, stripBrackets } from "./address-policy.js";

/** Turns a host name into the addresses a connection may use. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) => {
  const answers = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => a.address);
};

/**
 * A fixed zone in front of another resolver (`*.example.org` covers subdomains). Mock mode uses it
 * so public names resolve on a machine without DNS while still passing through the SSRF judge.
 */
export function zoneResolver(zone: Readonly<Record<string, readonly string[]>>, fallback: Resolver): Resolver {
  return async (hostname) => {
    const name = hostname.toLowerCase().replace(/\.$/, "");
    const exact = zone[name];
    if (exact) return [...exact];
    for (const [pattern, addresses] of Object.entries(zone)) {
      if (pattern.startsWith("*.") && name.endsWith(pattern.slice(1))) return [...addresses];
    }
    return fallback(name);
  };
}

export interface OutboundRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Bytes of body kept; the rest is dropped and `truncated` set. */
  maxBytes: number;
  maxRedirects: number;
  /** Runs before each redirect is followed, with the absolute target URL; throwing refuses the hop. */
  beforeRedirect?: (target: string) => void;
}

export interface OutboundResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  truncated: boolean;
  /** The URL that answered, after redirects. */
  url: string;
  redirects: number;
}

/**
 * Where a judged request is actually sent. `direct` connects to the judged address (with
 * `sealed`, only if that is 127.0.0.1 or ::1: mock mode never leaves the machine); `rewrite` sends
 * it to a fixed origin (the mock upstream) with the original Host, after the same judgement.
 */
export type Transport = { kind: "direct"; sealed?: boolean } | { kind: "rewrite"; origin: string };

interface BlockedLookupError extends Error {
  gatewayError?: GatewayError;
}

/**
 * HTTP client for URLs chosen by agents (http_fetch, generic tools). Every hop, redirects included,
 * is judged before it is sent, and the socket connects through a lookup that judges the very
 * addresses it connects to, so a DNS answer cannot change between the check and the connection.
 */
export class GuardedHttpClient {
  private readonly agent: Agent;

  constructor(private readonly options: { resolver: Resolver; allowList: AddressAllowList; transport: Transport; connections?: number }) {
    const guardedLookup = (hostname: string, lookupOptions: { all?: boolean }, callback: (...args: unknown[]) => void) => {
      this.resolveJudged(hostname).then(
        (addresses) => {
          const entries: LookupAddress[] = addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
          if (lookupOptions.all) callback(null, entries);
          else callback(null, entries[0]!.address, entries[0]!.family);
        },
        (err: unknown) => {
          const error: BlockedLookupError = new Error(isGatewayError(err) ? err.message : String(err));
          if (isGatewayError(err)) error.gatewayError = err;
          callback(error);
        },
      );
    };
    this.agent = new Agent({
      connections: options.connections ?? 64,
      keepAliveTimeout: 10_000,
      connect: { lookup: guardedLookup as never, timeout: 10_000 },
    });
  }

  /**
   * The pooled dispatcher whose connections go through the judging lookup, for clients that need
   * a streaming fetch (the MCP client). IP literals skip lookups: call `resolveJudged` first.
   */
  get dispatcher(): Dispatcher {
    return this.agent;
  }

  /** Resolves a host and refuses it unless every address it resolves to is allowed. */
  async resolveJudged(hostname: string): Promise<string[]> {
    const host = stripBrackets(hostname);
    let addresses: string[];
    if (isIpLiteral(host)) addresses = [host];
    else {
      try {
        addresses = await this.options.resolver(host);
      } catch {
        throw new GatewayError("upstream_error", `could not resolve host ${host.slice(0, 253)}`, { details: { reason: "dns", retryable: false } });
      }
    }
    if (addresses.length === 0) throw new GatewayError("upstream_error", `host ${host} has no address`, { details: { reason: "dns", retryable: false } });
    const { transport } = this.options;
    for (const address of addresses) {
      const verdict = judgeAddress(address, this.options.allowList);
      if (!verdict.allowed) {
        throw ssrfBlocked(`refusing to connect to ${host}: it resolves to a ${verdict.range} address`, verdict.range);
      }
      if (transport.kind === "direct" && transport.sealed === true && !isLocalLoopback(address)) {
        throw ssrfBlocked(`refusing to connect to ${host} (${address}): in UPSTREAM_MODE=mock nothing leaves 127.0.0.1`, "mockMode");
      }
    }
    return addresses;
  }

  /** @throws GatewayError ssrf_blocked | invalid_request | upstream_error; an abort propagates as is */
  async request(rawUrl: string, init: OutboundRequest): Promise<OutboundResponse> {
    let url = checkUrlShape(rawUrl);
    let method = init.method;
    let body = init.body;
    for (let redirects = 0; ; redirects++) {
      await this.resolveJudged(url.hostname);
      const response = await this.send(url, { ...init, method, ...(body === undefined ? {} : { body }) });
      const location = response.headers.location;
      if ([301, 302, 303, 307, 308].includes(response.statusCode) && location !== undefined && init.maxRedirects > 0) {
        await response.body.dump();
        if (redirects >= init.maxRedirects) {
          throw new GatewayError("upstream_error", `more than ${init.maxRedirects} redirects`, { details: { reason: "too_many_redirects", retryable: false } });
        }
        url = checkUrlShape(new URL(String(location), url).toString());
        init.beforeRedirect?.(url.toString());
        if (response.statusCode === 303 || ((response.statusCode === 301 || response.statusCode === 302) && method === "POST")) {
          method = "GET";
          body = undefined;
        }
        continue;
      }
      const { buffer, truncated } = await readCapped(response.body, method === "HEAD" ? 0 : init.maxBytes);
      return { status: response.statusCode, headers: flattenHeaders(response.headers), body: buffer, truncated, url: url.toString(), redirects };
    }
  }

  private async send(url: URL, init: OutboundRequest): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { ...init.headers };
    let target = url;
    if (this.options.transport.kind === "rewrite") {
      target = new URL(url.pathname + url.search, this.options.transport.origin);
      headers.host = url.host;
      headers["x-forwarded-proto"] = url.protocol.slice(0, -1);
    }
    try {
      return await request(target, {
        method: init.method,
        headers,
        ...(init.body === undefined ? {} : { body: init.body }),
        ...(init.signal === undefined ? {} : { signal: init.signal }),
        dispatcher: this.agent,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const blocked = findBlocked(err);
      if (blocked) throw blocked;
      throw connectionFailure(url.host, err);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function findBlocked(err: unknown): GatewayError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if ((e as BlockedLookupError).gatewayError) return (e as BlockedLookupError).gatewayError;
  }
  return undefined;
}

/** A connection-level failure: retryable, and named by its code, never by a stack. */
export function connectionFailure(host: string, err: unknown): GatewayError {
  const code = (err as { code?: string }).code ?? "connection_failed";
  return new GatewayError("upstream_error", `could not reach ${host}: ${code}`, {
    details: { reason: "connection", errorCode: code, retryable: true },
    cause: err,
  });
}

export function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  return out;
}

/** Reads at most `maxBytes` of a body and drops the rest, so a huge answer cannot exhaust memory. */
export async function readCapped(body: Dispatcher.ResponseData["body"], maxBytes: number): Promise<{ buffer: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > maxBytes) {
      chunks.push(chunk.subarray(0, maxBytes - size));
      size = maxBytes;
      truncated = true;
      body.destroy();
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { buffer: Buffer.concat(chunks, size), truncated };
}
