import { Ajv } from "ajv";
import { GatewayError } from "../../errors/index.js";
import type { GuardedHttpClient } from "../../net/outbound.js";
import type { RoadAction, UpstreamReply } from "../../proxy/catalog.js";
import { linearRegExpEngine } from "../../util/linear-regexp.js";
import { upstreamFailure } from "../upstream.js";

/** A tool defined by configuration: an HTTP API described as data, no code. */
export interface GenericToolDefinition {
  name: string;
  description?: string;
  baseUrl: string;
  /** How the stored credential is sent: a header (optionally with a prefix such as "Bearer "), or a query parameter. */
  auth?: { in: "header"; name: string; prefix?: string } | { in: "query"; name: string } | { in: "none" };
  timeoutMs?: number;
  actions: Record<string, GenericActionDefinition>;
}

export interface GenericActionDefinition {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path template relative to baseUrl; `{name}` is replaced by the URL-encoded parameter. */
  path: string;
  /** JSON Schema of the parameters (an object schema). */
  params?: Record<string, unknown>;
  /** Parameters sent as query string; for GET/HEAD/DELETE every non-path parameter is. */
  query?: string[];
  idempotent?: boolean;
  cacheable?: boolean;
  cacheTtlSeconds?: number;
  timeoutMs?: number;
  description?: string;
}

const NAME = "^[a-z0-9][a-z0-9_-]{0,63}$";
const definitionSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "baseUrl", "actions"],
  properties: {
    name: { type: "string", pattern: NAME },
    description: { type: "string", maxLength: 500 },
    baseUrl: { type: "string", maxLength: 2048, pattern: "^https?://" },
    auth: {
      type: "object",
      required: ["in"],
      oneOf: [
        {
          additionalProperties: false,
          properties: {
            in: { const: "header" },
            name: { type: "string", pattern: "^[A-Za-z0-9-]{1,64}$" },
            prefix: { type: "string", maxLength: 32, pattern: "^[^\\r\\n]*$" },
          },
          required: ["in", "name"],
        },
        {
          additionalProperties: false,
          properties: { in: { const: "query" }, name: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$" } },
          required: ["in", "name"],
        },
        { additionalProperties: false, properties: { in: { const: "none" } } },
      ],
    },
    timeoutMs: { type: "integer", minimum: 100, maximum: 120_000 },
    actions: {
      type: "object",
      minProperties: 1,
      maxProperties: 64,
      propertyNames: { pattern: NAME },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        required: ["method", "path"],
        properties: {
          method: { enum: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] },
          path: { type: "string", pattern: "^/[^\\s?#]*$", maxLength: 1024 },
          params: { type: "object" },
          query: { type: "array", items: { type: "string", maxLength: 64 }, maxItems: 64 },
          idempotent: { type: "boolean" },
          cacheable: { type: "boolean" },
          cacheTtlSeconds: { type: "integer", minimum: 1, maximum: 86_400 },
          timeoutMs: { type: "integer", minimum: 100, maximum: 120_000 },
          description: { type: "string", maxLength: 500 },
        },
      },
    },
  },
} as const;

// Parameter schemas are written by admins and matched against agents' values: RE2, as in the catalog.
const ajv = new Ajv({ allErrors: true, strict: false, code: { regExp: linearRegExpEngine } });
const validateDefinition = ajv.compile(definitionSchema);

/** @throws GatewayError invalid_request naming the bad field */
export function parseGenericTool(input: unknown, reservedNames: readonly string[]): GenericToolDefinition {
  if (!validateDefinition(input)) {
    const e = validateDefinition.errors?.[0];
    const where = e ? `tool${e.instancePath.replaceAll("/", ".")}` : "tool";
    throw new GatewayError("invalid_request", `invalid tool definition: ${where} ${e?.message ?? "is invalid"}`, { details: { path: where } });
  }
  const def = input as unknown as GenericToolDefinition;
  if (!URL.canParse(def.baseUrl))
    throw new GatewayError("invalid_request", "invalid tool definition: tool.baseUrl is not an absolute URL", { details: { path: "tool.baseUrl" } });
  if (reservedNames.includes(def.name)) throw new GatewayError("conflict", `"${def.name}" is a built-in tool; pick another name`);
  for (const [actionName, action] of Object.entries(def.actions)) {
    const schema = action.params ?? { type: "object", additionalProperties: false, properties: {} };
    try {
      ajv.compile(schema);
    } catch (err) {
      throw new GatewayError(
        "invalid_request",
        `invalid tool definition: tool.actions.${actionName}.params is not a valid JSON Schema: ${(err as Error).message}`,
      );
    }
    for (const placeholder of action.path.matchAll(/\{([^}]+)\}/g)) {
      const props = schema as { properties?: Record<string, unknown>; required?: string[] };
      if (!props.required?.includes(placeholder[1]!)) {
        throw new GatewayError(
          "invalid_request",
          `invalid tool definition: tool.actions.${actionName}.path uses {${placeholder[1]}}, which params must list as required`,
        );
      }
    }
  }
  return def;
}

/** Segments URL parsing treats as navigation (WHATWG also decodes `%2e`, which encodeURIComponent cannot produce). */
const DOT_SEGMENTS = new Set(["", ".", ".."]);

/**
 * Fills a path template with URL-encoded parameters. A value that is empty, `.` or `..` would move
 * the request to another path of the API (sent with the stored credential), so it is refused; and
 * the final path must still begin with the template's literal prefix.
 * @throws GatewayError invalid_request naming the parameter
 */
export function templatedUrl(baseUrl: string, template: string, params: Record<string, unknown>): { url: URL; used: Set<string> } {
  const used = new Set<string>();
  const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    used.add(name);
    const value = String(params[name]);
    if (DOT_SEGMENTS.has(value))
      throw new GatewayError("invalid_request", `params.${name} may not be ${value === "" ? "empty" : `"${value}"`}: it is a path segment`, {
        details: { issues: [{ path: `params.${name}`, message: "is a dot segment" }] },
      });
    return encodeURIComponent(value);
  });
  const base = baseUrl.replace(/\/+$/, "");
  const url = new URL(base + path);
  const literalPrefix = new URL(base + template.slice(0, template.indexOf("{") < 0 ? undefined : template.indexOf("{"))).pathname;
  if (!url.pathname.startsWith(literalPrefix)) {
    throw new GatewayError("invalid_request", `the parameters move the request outside ${literalPrefix}`, {
      details: { issues: [{ path: "params", message: "leaves the action's path" }] },
    });
  }
  return { url, used };
}

async function invokeGeneric(
  def: GenericToolDefinition,
  action: GenericActionDefinition,
  client: GuardedHttpClient,
  params: Record<string, unknown>,
  ctx: Parameters<RoadAction["invoke"]>[1],
): Promise<UpstreamReply> {
  const { url, used } = templatedUrl(def.baseUrl, action.path, params);
  const bodyless = action.method === "GET" || action.method === "HEAD" || action.method === "DELETE";
  const body: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) {
    if (used.has(name)) continue;
    if (bodyless || action.query?.includes(name)) url.searchParams.set(name, typeof value === "string" ? value : JSON.stringify(value));
    else body[name] = value;
  }
  const headers: Record<string, string> = { accept: "application/json", "x-correlation-id": ctx.correlationId };
  if (ctx.traceparent !== undefined) headers.traceparent = ctx.traceparent;
  const auth = def.auth ?? { in: "none" };
  if (auth.in === "header") headers[auth.name.toLowerCase()] = `${auth.prefix ?? ""}${ctx.credential ?? ""}`;
  if (auth.in === "query") url.searchParams.set(auth.name, ctx.credential ?? "");
  let payload: string | undefined;
  if (!bodyless) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const response = await client.request(url.toString(), {
    method: action.method,
    headers,
    signal: ctx.signal,
    maxBytes: 8 * 1024 * 1024,
    maxRedirects: 0,
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = response.body.toString("utf8");
  let data: unknown = text;
  if (/json/i.test(response.headers["content-type"] ?? "")) {
    try {
      data = JSON.parse(text);
    } catch {
      // keep text
    }
  }
  if (response.status < 200 || response.status >= 300) throw upstreamFailure(def.name, response.status, data, response.headers);
  return { status: response.status, body: { status: response.status, data }, bytes: response.body.length };
}

/** Turns a definition into road actions. The base URL and every call are judged by the SSRF guard. */
export function genericToolActions(def: GenericToolDefinition, client: GuardedHttpClient): RoadAction[] {
  return Object.entries(def.actions).map(([name, action]) => {
    const idempotent = action.idempotent ?? (action.method === "GET" || action.method === "HEAD" || action.method === "PUT" || action.method === "DELETE");
    const road: RoadAction = {
      tool: def.name,
      action: name,
      paramsSchema: action.params ?? { type: "object", additionalProperties: false, properties: {} },
      idempotent,
      cacheable: action.cacheable ?? false,
      needsCredential: (def.auth?.in ?? "none") !== "none",
      metricTool: "generic",
      hints: { readOnly: action.method === "GET" || action.method === "HEAD", openWorld: true, ...(action.method === "DELETE" ? { destructive: true } : {}) },
      invoke: (params, ctx) => invokeGeneric(def, action, client, params, ctx),
    };
    if (action.description ?? def.description) road.description = (action.description ?? def.description)!;
    if (action.cacheTtlSeconds !== undefined) road.cacheTtlSeconds = action.cacheTtlSeconds;
    const timeout = action.timeoutMs ?? def.timeoutMs;
    if (timeout !== undefined) road.timeoutMs = timeout;
    return road;
  });
}
