import { createHash } from "node:crypto";
import { Ajv } from "ajv";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { McpError, ToolListChangedNotificationSchema, Tool } from "@modelcontextprotocol/sdk/types.js";
import { fetch as undiciFetch } from "undici";
import { packageVersion } from "../config/version.js";
import { GatewayError, isGatewayError } from "../errors/index.js";
import type { GuardedHttpClient } from "../net/outbound.js";
import type { RoadAction, ToolCatalog, UpstreamReply } from "../proxy/index.js";
import type { MetaStore } from "../store/index.js";
import type { ToolChange } from "../tools/index.js";

/** An upstream MCP server (Streamable HTTP) whose tools the gateway serves as its own. */
export interface McpServerDefinition {
  name: string;
  url: string;
  /** How the stored credential (`POST /api/credentials` with `tool: <name>`) is sent. */
  auth?: { in: "header"; name: string; prefix?: string } | { in: "none" };
  /** Ceiling of one call to this server's tools. */
  timeoutMs?: number;
  description?: string;
}

/** One upstream tool as discovered by `tools/list`. `action` is its name in the gateway (`<server>:<action>`). */
export interface DiscoveredTool {
  action: string;
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  annotations?: {
    readOnlyHint?: boolean | undefined;
    destructiveHint?: boolean | undefined;
    idempotentHint?: boolean | undefined;
    openWorldHint?: boolean | undefined;
    title?: string | undefined;
  };
}

export interface StoredServer {
  definition: McpServerDefinition;
  tools: DiscoveredTool[];
  discoveredAt: number;
}

export type McpServerView = StoredServer;

const STORE_KEY = "mcp_servers";
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ACTION = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MAX_TOOLS = 256;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Most an upstream MCP server may send in one HTTP response (a stream counts as one). */
export const MAX_UPSTREAM_RESPONSE_BYTES = 16 * 1024 * 1024;

const ajv = new Ajv({ allErrors: true, strict: false });
const validateDefinition = ajv.compile({
  type: "object",
  additionalProperties: false,
  required: ["name", "url"],
  properties: {
    name: { type: "string", pattern: NAME.source },
    url: { type: "string", maxLength: 2048, pattern: "^https?://" },
    description: { type: "string", maxLength: 500 },
    timeoutMs: { type: "integer", minimum: 100, maximum: 120_000 },
    auth: {
      type: "object",
      required: ["in"],
      oneOf: [
        {
          additionalProperties: false,
          required: ["in", "name"],
          properties: {
            in: { const: "header" },
            name: { type: "string", pattern: "^[A-Za-z0-9-]{1,64}$" },
            prefix: { type: "string", maxLength: 32, pattern: "^[^\\r\\n]*$" },
          },
        },
        { additionalProperties: false, properties: { in: { const: "none" } } },
      ],
    },
  },
});

/** @throws GatewayError invalid_request naming the bad field */
export function parseMcpServer(input: unknown): McpServerDefinition {
  if (!validateDefinition(input)) {
    const e = validateDefinition.errors?.[0];
    const where = e ? `server${e.instancePath.replaceAll("/", ".")}` : "server";
    throw new GatewayError("invalid_request", `invalid MCP server: ${where} ${e?.message ?? "is invalid"}`, { details: { path: where } });
  }
  const def = input as unknown as McpServerDefinition;
  try {
    const url = new URL(def.url);
    if (url.username !== "" || url.password !== "") throw new Error("credentials in the URL");
  } catch (err) {
    throw new GatewayError("invalid_request", `invalid MCP server: server.url is not a usable http(s) URL (${(err as Error).message})`, {
      details: { path: "server.url" },
    });
  }
  return def;
}

/**
 * The gateway's name for an upstream tool: lower case, `[a-z0-9_-]`, at most 64 characters, so it
 * fits the scope grammar (`<server>:<action>`); a name that had to change, or would collide, ends
 * with a short hash of the original.
 */
export function actionNameFor(toolName: string, taken: ReadonlySet<string>): string {
  const cleaned = toolName
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "_")
    .replace(/^[^a-z0-9]+/, "");
  const exact = cleaned === toolName && ACTION.test(cleaned) && !taken.has(cleaned);
  if (exact) return cleaned;
  const hash = createHash("sha256").update(toolName).digest("hex").slice(0, 6);
  return `${(cleaned || "tool").slice(0, 57)}_${hash}`;
}

/** The MCP SDK's client side, loaded when the first upstream server is connected (a gateway fronting none never loads it). */
interface ClientSdk {
  Client: typeof Client;
  StreamableHTTPClientTransport: typeof StreamableHTTPClientTransport;
  StreamableHTTPError: typeof StreamableHTTPError;
  McpError: typeof McpError;
  ToolListChangedNotificationSchema: typeof ToolListChangedNotificationSchema;
}
let clientSdk: ClientSdk | undefined;

export async function loadClientSdk(): Promise<ClientSdk> {
  if (clientSdk !== undefined) return clientSdk;
  const [client, http, types] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  clientSdk = {
    Client: client.Client,
    StreamableHTTPClientTransport: http.StreamableHTTPClientTransport,
    StreamableHTTPError: http.StreamableHTTPError,
    McpError: types.McpError,
    ToolListChangedNotificationSchema: types.ToolListChangedNotificationSchema,
  };
  return clientSdk;
}

/** An error the MCP protocol layer raised (the server answered with a JSON-RPC error); never one before the SDK is loaded. */
const isMcpError = (err: unknown): err is McpError => clientSdk !== undefined && err instanceof clientSdk.McpError;

/** Maps whatever the MCP client raised to the gateway's upstream codes (breaker and retries read them). */
export function mcpFailure(server: string, err: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return err; // the road turns its own abort into upstream_timeout
  if (isGatewayError(err)) return err;
  if (isMcpError(err)) {
    if (err.code === -32602)
      return new GatewayError("upstream_client_error", `${server} rejected the call: ${err.message.slice(0, 300)}`, {
        status: 400,
        details: { mcpCode: err.code },
      });
    if (err.code === -32001) return new GatewayError("upstream_timeout", `${server} did not answer in time`);
    return new GatewayError("upstream_error", `${server} failed: ${err.message.slice(0, 300)}`, {
      details: { mcpCode: err.code, reason: "mcp_error", retryable: false },
    });
  }
  if (clientSdk !== undefined && err instanceof clientSdk.StreamableHTTPError) {
    const status = err.code ?? 0;
    if (status === 401 || status === 403) {
      return new GatewayError("upstream_error", `${server} refused the gateway's stored credential (${status}); an admin should check or rotate it`, {
        details: { upstreamStatus: status, reason: "credential_rejected", retryable: false },
      });
    }
    const retryable = status >= 500 || status === 429 || status === 404;
    return new GatewayError("upstream_error", `${server} failed (${status})`, {
      details: { upstreamStatus: status, reason: status >= 500 ? "upstream_5xx" : "mcp_transport", retryable },
    });
  }
  const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
  return new GatewayError("upstream_error", `could not reach ${server}${code ? `: ${code}` : ""}`, {
    details: { reason: "connection", retryable: true, ...(code ? { errorCode: code } : {}) },
  });
}

/** One long-lived MCP client session per upstream server, opened on first use and reopened after a failure. */
class UpstreamConnection {
  private client: Promise<Client> | undefined;

  constructor(
    private readonly def: McpServerDefinition,
    private readonly fetchFn: typeof fetch,
    private readonly onListChanged: () => void,
  ) {}

  get(): Promise<Client> {
    this.client ??= this.open().catch((err: unknown) => {
      this.client = undefined;
      throw err;
    });
    return this.client;
  }

  private async open(): Promise<Client> {
    const { Client, StreamableHTTPClientTransport, ToolListChangedNotificationSchema } = await loadClientSdk();
    const client = new Client({ name: "4runr-gateway", version: packageVersion() }, { capabilities: {} });
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => this.onListChanged());
    // Errors of the background SSE stream are not the caller's: the next call reconnects if needed.
    client.onerror = () => undefined;
    await client.connect(new StreamableHTTPClientTransport(new URL(this.def.url), { fetch: this.fetchFn }), {
      timeout: this.def.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    return client;
  }

  /** Drops the session (after a transport failure, or when the server is changed or removed). */
  reset(): void {
    const current = this.client;
    this.client = undefined;
    void current?.then((c) => c.close()).catch(() => undefined);
  }
}

/**
 * Upstream MCP servers fronted by the gateway: their definitions and discovered tools live in the
 * store (so every instance serves the same tools), their tools become catalog actions
 * `<server>:<action>` that the road calls like any adapter (policy, vault, breaker, retries, audit,
 * metrics), and every connection passes the SSRF guard.
 */
export class McpUpstreams {
  private servers = new Map<string, StoredServer>();
  private serialized = new Map<string, string>();
  private readonly connections = new Map<string, UpstreamConnection>();
  private readonly refreshing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly o: {
      store: MetaStore;
      catalog: ToolCatalog;
      client: GuardedHttpClient;
      secretFor: (tool: string) => string | undefined;
      /** Names taken by built-in and generic tools. */
      takenNames: () => readonly string[];
      now: () => number;
      /** Every change to the stored servers (define, refresh, listChanged, remove), for the other instances. */
      onChange?: (change: ToolChange) => void;
      onError?: (err: unknown, server: string) => void;
    },
  ) {}

  /** Loads servers from the store (at start, and when another instance changed them). */
  async reload(): Promise<void> {
    const raw = await this.o.store.getMeta(STORE_KEY);
    const stored = raw === undefined ? {} : (JSON.parse(raw) as Record<string, StoredServer>);
    for (const name of this.servers.keys()) if (!(name in stored)) this.unregister(name);
    for (const [name, server] of Object.entries(stored)) {
      const text = JSON.stringify(server);
      if (this.serialized.get(name) === text) continue;
      const before = this.servers.get(name);
      if (before !== undefined && JSON.stringify(before.definition) !== JSON.stringify(server.definition)) this.connections.get(name)?.reset();
      this.install(server);
    }
  }

  list(): McpServerView[] {
    return [...this.servers.values()];
  }

  get(name: string): McpServerView {
    const found = this.servers.get(name);
    if (found === undefined) throw new GatewayError("not_found", `no MCP server named "${name.slice(0, 64)}"`);
    return found;
  }

  /**
   * Registers (or replaces) a server: validates it, judges its address, lists its tools and stores it.
   * @throws GatewayError invalid_request | conflict | ssrf_blocked | credential_missing | upstream_*
   */
  async define(input: unknown): Promise<McpServerView> {
    const def = parseMcpServer(input);
    if (this.o.takenNames().includes(def.name)) throw new GatewayError("conflict", `"${def.name}" is already the name of a tool; pick another name`);
    await this.o.client.resolveJudged(new URL(def.url).hostname).catch((err: unknown) => {
      if (isGatewayError(err) && err.code === "ssrf_blocked") throw err;
    });
    const previous = this.connections.get(def.name);
    previous?.reset();
    this.connections.delete(def.name);
    const tools = await this.discover(def);
    const server: StoredServer = { definition: def, tools, discoveredAt: this.o.now() };
    await this.save(server);
    return server;
  }

  /** Lists the server's tools again (admin refresh, or the upstream said `listChanged`). */
  async refresh(name: string): Promise<McpServerView> {
    const current = this.get(name);
    const tools = await this.discover(current.definition);
    const server: StoredServer = { definition: current.definition, tools, discoveredAt: this.o.now() };
    await this.save(server);
    return server;
  }

  /** @returns whether a server of that name existed */
  async remove(name: string): Promise<boolean> {
    if (!this.servers.has(name)) return false;
    const next = Object.fromEntries([...this.servers].filter(([n]) => n !== name));
    await this.o.store.setMeta(STORE_KEY, JSON.stringify(next));
    this.unregister(name);
    this.o.onChange?.({ type: "tool_removed", tool: name });
    return true;
  }

  async close(): Promise<void> {
    for (const c of this.connections.values()) c.reset();
    this.connections.clear();
  }

  private async save(server: StoredServer): Promise<void> {
    const next = { ...Object.fromEntries(this.servers), [server.definition.name]: server };
    await this.o.store.setMeta(STORE_KEY, JSON.stringify(next));
    this.install(server);
    this.o.onChange?.({ type: "tool_defined", tool: server.definition.name });
  }

  private async discover(def: McpServerDefinition): Promise<DiscoveredTool[]> {
    if ((def.auth?.in ?? "none") === "header" && this.o.secretFor(def.name) === undefined) {
      throw new GatewayError("credential_missing", `MCP server ${def.name} sends a credential: store it first (POST /api/credentials with tool "${def.name}")`);
    }
    const connection = this.connection(def);
    const found: Tool[] = [];
    try {
      const client = await connection.get();
      let cursor: string | undefined;
      for (let page = 0; page < 20 && found.length < MAX_TOOLS; page++) {
        const listed = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: def.timeoutMs ?? DEFAULT_TIMEOUT_MS });
        found.push(...listed.tools);
        cursor = listed.nextCursor;
        if (cursor === undefined) break;
      }
    } catch (err) {
      connection.reset();
      throw mcpFailure(def.name, err);
    }
    const taken = new Set<string>();
    return found.slice(0, MAX_TOOLS).map((t) => {
      const action = actionNameFor(t.name, taken);
      taken.add(action);
      const tool: DiscoveredTool = { action, name: t.name, inputSchema: { ...(t.inputSchema as Record<string, unknown>) } };
      if (t.title !== undefined) tool.title = t.title;
      if (t.description !== undefined) tool.description = t.description.slice(0, 2000);
      if (t.annotations !== undefined) tool.annotations = t.annotations;
      return tool;
    });
  }

  private connection(def: McpServerDefinition): UpstreamConnection {
    let c = this.connections.get(def.name);
    if (c === undefined) {
      c = new UpstreamConnection(def, this.guardedFetch(def), () => this.onListChanged(def.name));
      this.connections.set(def.name, c);
    }
    return c;
  }

  private onListChanged(name: string): void {
    if (this.refreshing.has(name)) return;
    const run = this.refresh(name)
      .catch((err: unknown) => this.o.onError?.(err, name))
      .finally(() => this.refreshing.delete(name));
    this.refreshing.set(name, run);
  }

  /** fetch for the SDK client: every request judged by the SSRF guard, the current credential added, no redirects followed. */
  private guardedFetch(def: McpServerDefinition): typeof fetch {
    const dispatcher = this.o.client.dispatcher;
    return async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new GatewayError("ssrf_blocked", `refusing a ${url.protocol} URL`);
      await this.o.client.resolveJudged(url.hostname);
      const headers = new Headers(init?.headers);
      const auth = def.auth ?? { in: "none" };
      if (auth.in === "header") headers.set(auth.name, `${auth.prefix ?? ""}${this.o.secretFor(def.name) ?? ""}`);
      const response = (await undiciFetch(url, {
        ...(init as object),
        headers: Object.fromEntries(headers),
        dispatcher,
        redirect: "manual",
      } as never)) as unknown as Response;
      return capped(response, MAX_UPSTREAM_RESPONSE_BYTES, def.name);
    };
  }

  private install(server: StoredServer): void {
    const { definition: def } = server;
    this.servers.set(def.name, server);
    this.serialized.set(def.name, JSON.stringify(server));
    this.o.catalog.unregister(def.name);
    for (const tool of server.tools) {
      const action = this.toAction(def, tool);
      try {
        this.o.catalog.register([action]);
      } catch {
        // A schema the gateway's validator cannot compile: the upstream validates the arguments itself.
        this.o.catalog.register([{ ...action, paramsSchema: { type: "object" } }]);
      }
    }
  }

  private unregister(name: string): void {
    this.servers.delete(name);
    this.serialized.delete(name);
    this.o.catalog.unregister(name);
    this.connections.get(name)?.reset();
    this.connections.delete(name);
  }

  private toAction(def: McpServerDefinition, tool: DiscoveredTool): RoadAction {
    const ann = tool.annotations ?? {};
    const { $schema: _ignored, ...schema } = tool.inputSchema;
    const hints: NonNullable<RoadAction["hints"]> = { openWorld: ann.openWorldHint ?? true };
    if (ann.readOnlyHint !== undefined) hints.readOnly = ann.readOnlyHint;
    if (ann.destructiveHint !== undefined) hints.destructive = ann.destructiveHint;
    const title = tool.title ?? ann.title;
    if (title !== undefined) hints.title = title;
    const action: RoadAction = {
      tool: def.name,
      action: tool.action,
      description: tool.description ?? `${tool.name} on the MCP server ${def.name}`,
      paramsSchema: schema,
      idempotent: ann.idempotentHint === true || ann.readOnlyHint === true,
      cacheable: false,
      needsCredential: (def.auth?.in ?? "none") === "header",
      hints,
      invoke: (params, ctx) => this.call(def, tool.name, params, ctx),
    };
    if (def.timeoutMs !== undefined) action.timeoutMs = def.timeoutMs;
    return action;
  }

  private async call(
    def: McpServerDefinition,
    toolName: string,
    params: Record<string, unknown>,
    ctx: Parameters<RoadAction["invoke"]>[1],
  ): Promise<UpstreamReply> {
    const connection = this.connection(def);
    let result;
    try {
      const client = await connection.get();
      const meta: Record<string, unknown> = { correlationId: ctx.correlationId };
      if (ctx.traceparent !== undefined) meta.traceparent = ctx.traceparent;
      result = await client.callTool({ name: toolName, arguments: params, _meta: meta }, undefined, { signal: ctx.signal, timeout: 600_000 });
    } catch (err) {
      const mapped = mcpFailure(def.name, err, ctx.signal);
      // A broken session (upstream restarted, connection lost) is reopened by the next call.
      if (!isMcpError(err)) connection.reset();
      throw mapped;
    }
    if (result.isError === true) {
      const text = (Array.isArray(result.content) ? result.content : [])
        .map((c) => ((c as { type?: string; text?: string }).type === "text" ? (c as { text: string }).text : ""))
        .join(" ")
        .trim()
        .slice(0, 300);
      throw new GatewayError("upstream_client_error", `${def.name} tool ${toolName} reported an error${text ? `: ${text}` : ""}`, {
        status: 502,
        details: { reason: "tool_error" },
      });
    }
    const body = result.structuredContent ?? { content: result.content };
    return { status: 200, body, bytes: Buffer.byteLength(JSON.stringify(body)) };
  }
}

/** The response with its body cut off by an error after `maxBytes`, so an upstream cannot exhaust memory. */
export function capped(response: Response, maxBytes: number, server: string): Response {
  if (response.body === null) return response;
  let seen = 0;
  const limit = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > maxBytes)
        controller.error(
          new GatewayError("upstream_error", `${server} sent more than ${maxBytes} bytes`, { details: { reason: "response_too_large", retryable: false } }),
        );
      else controller.enqueue(chunk);
    },
  });
  return new Response(response.body.pipeThrough(limit), { status: response.status, statusText: response.statusText, headers: response.headers });
}
