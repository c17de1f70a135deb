import { GatewayError } from "../errors/index.js";
import { GuardedHttpClient, zoneResolver, type Resolver, type Transport } from "../net/outbound.js";
import { checkUrlShape, type AddressAllowList } from "../net/address-policy.js";
import { ToolCatalog } from "../proxy/catalog.js";
import type { MetaStore } from "../store/index.js";
import { genericToolActions, parseGenericTool, type GenericToolDefinition } from "./generic/index.js";
import { gmailSendTool } from "./gmail-send/index.js";
import { httpFetchTool } from "./http-fetch/index.js";
import { openaiTool } from "./openai/index.js";
import { serpapiTool } from "./serpapi/index.js";
import { ApiClient } from "./upstream.js";

export { upstreamFailure, ApiClient } from "./upstream.js";
export type { GenericToolDefinition } from "./generic/index.js";

export const BUILTIN_TOOLS = ["serpapi", "http_fetch", "openai", "gmail_send"] as const;
const GENERIC_TOOLS_KEY = "generic_tools";

export interface ToolboxOptions {
  store: MetaStore;
  baseUrls: { serpapi: string; openai: string; gmail: string };
  /** Where http_fetch and generic tools send judged requests (mock mode rewrites http_fetch to the mock web server). */
  fetchTransport: Transport;
  resolver: Resolver;
  allowList: AddressAllowList;
  httpFetchMaxBytes: number;
  httpFetchMaxRedirects: number;
  /** Called after a generic tool was defined or removed here (other instances reload their tools). */
  onChange?: (change: ToolChange) => void;
  /** A stored generic tool that can no longer be loaded (e.g. a schema pattern RE2 refuses): it is left out, the others load. */
  onUnusableTool?: (name: string, reason: string) => void;
}

/** A generic tool defined (or replaced) or removed through this toolbox. */
export type ToolChange = { type: "tool_defined" | "tool_removed"; tool: string };

/**
 * Mock mode asks no DNS server anything: `localhost` is 127.0.0.1, the metadata name keeps its
 * hostile address (so the SSRF judge is exercised), and every other name lands on a public
 * documentation address, which the mock web server answers for.
 */
export function mockResolver(): Resolver {
  return zoneResolver({ localhost: ["127.0.0.1"], "metadata.google.internal": ["169.254.169.254"] }, async () => ["93.184.215.14"]);
}

/** The tools the gateway serves: built-ins plus generic HTTP tools defined through the admin API. */
export class Toolbox {
  readonly catalog = new ToolCatalog();
  private readonly api = new ApiClient();
  private readonly fetchClient: GuardedHttpClient;
  /** Judged requests sent straight to the address judged: generic tools, job callbacks. In mock mode sealed to 127.0.0.1. */
  readonly directClient: GuardedHttpClient;
  private generic = new Map<string, GenericToolDefinition>();

  constructor(private readonly options: ToolboxOptions) {
    this.fetchClient = new GuardedHttpClient({ resolver: options.resolver, allowList: options.allowList, transport: options.fetchTransport });
    // When http_fetch is rewritten to the mock web server, nothing else may leave the machine either.
    this.directClient =
      options.fetchTransport.kind === "direct"
        ? this.fetchClient
        : new GuardedHttpClient({ resolver: options.resolver, allowList: options.allowList, transport: { kind: "direct", sealed: true } });
    this.catalog.register([
      ...serpapiTool({ baseUrl: options.baseUrls.serpapi, api: this.api }),
      ...openaiTool({ baseUrl: options.baseUrls.openai, api: this.api }),
      ...gmailSendTool({ baseUrl: options.baseUrls.gmail, api: this.api }),
      ...httpFetchTool({ client: this.fetchClient, maxBytes: options.httpFetchMaxBytes, maxRedirects: options.httpFetchMaxRedirects }),
    ]);
  }

  /** Loads generic tools from the store (at start, and when another instance changed them). */
  async reload(): Promise<void> {
    const raw = await this.options.store.getMeta(GENERIC_TOOLS_KEY);
    const defs = raw === undefined ? {} : (JSON.parse(raw) as Record<string, GenericToolDefinition>);
    for (const name of this.generic.keys()) if (!(name in defs)) this.catalog.unregister(name);
    this.generic = new Map(Object.entries(defs));
    for (const def of this.generic.values()) {
      this.catalog.unregister(def.name);
      try {
        this.catalog.register(genericToolActions(def, this.directClient));
      } catch (err) {
        // Stored by an older version under looser rules: one bad tool must not stop the gateway starting.
        this.options.onUnusableTool?.(def.name, (err as Error).message);
      }
    }
  }

  listGeneric(): GenericToolDefinition[] {
    return [...this.generic.values()];
  }

  /** Validates, checks the base URL against the SSRF guard, stores and registers a generic tool (replacing one of that name). */
  async defineGeneric(input: unknown): Promise<GenericToolDefinition> {
    const def = parseGenericTool(input, BUILTIN_TOOLS);
    // A name the catalog serves for another kind of tool (an upstream MCP server) is taken.
    if (this.catalog.hasTool(def.name) && !this.generic.has(def.name))
      throw new GatewayError("conflict", `"${def.name}" is already the name of a tool; pick another name`);
    // The URL's shape (scheme, no user:password@) is refused now, not on the first call.
    await this.directClient.resolveJudged(checkUrlShape(def.baseUrl).hostname).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === "ssrf_blocked") throw err;
      // An unresolvable host may resolve later; it is judged again on every call.
    });
    const next = new Map(this.generic).set(def.name, def);
    await this.options.store.setMeta(GENERIC_TOOLS_KEY, JSON.stringify(Object.fromEntries(next)));
    this.generic = next;
    this.catalog.unregister(def.name);
    this.catalog.register(genericToolActions(def, this.directClient));
    this.options.onChange?.({ type: "tool_defined", tool: def.name });
    return def;
  }

  /** @returns whether a tool of that name existed */
  async removeGeneric(name: string): Promise<boolean> {
    if (!this.generic.has(name)) return false;
    const next = new Map(this.generic);
    next.delete(name);
    await this.options.store.setMeta(GENERIC_TOOLS_KEY, JSON.stringify(Object.fromEntries(next)));
    this.generic = next;
    this.catalog.unregister(name);
    this.options.onChange?.({ type: "tool_removed", tool: name });
    return true;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.api.close(), this.fetchClient.close(), this.directClient === this.fetchClient ? undefined : this.directClient.close()]);
  }
}
