import type { RoadAction, ToolCatalog } from "../proxy/index.js";
import { mcpToolName } from "./tool-names.js";

/** One catalog action as an MCP tool (the `tools/list` entry), with the action it calls. */
export interface McpToolEntry {
  tool: string;
  action: string;
  descriptor: {
    name: string;
    title?: string;
    description: string;
    inputSchema: { type: "object"; [key: string]: unknown };
    annotations: { title?: string; readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean; openWorldHint: boolean };
  };
}

/**
 * The catalog seen as MCP tools, rebuilt only when the catalog changes. Names are unique: if two
 * actions would share one (a tool named `a__b` beside a tool `a` with an action `b__…`), the first
 * registered keeps it and the other is left out of MCP (it stays callable through `/api/proxy`).
 */
export class McpToolView {
  private builtFor = -1;
  private entries: McpToolEntry[] = [];
  private byName = new Map<string, McpToolEntry>();
  private static readonly MAX_LISTINGS = 1024;
  private listings = new Map<string, McpToolEntry["descriptor"][]>();
  private listingsFor = -1;

  constructor(private readonly catalog: ToolCatalog) {}

  /** Every tool, in catalog order. */
  all(): readonly McpToolEntry[] {
    this.refresh();
    return this.entries;
  }

  /**
   * The `tools/list` answer for one caller: the entries `visible` lets it see, kept per `key` (which
   * must change whenever `visible` may answer differently: the policies, the agent, its role, the
   * token's scopes and intent) until the catalog changes. Bounded: emptied when full.
   */
  listing(key: string, visible: (entry: McpToolEntry) => boolean): McpToolEntry["descriptor"][] {
    this.refresh();
    if (this.listingsFor !== this.builtFor) {
      this.listings.clear();
      this.listingsFor = this.builtFor;
    }
    let tools = this.listings.get(key);
    if (tools === undefined) {
      tools = this.entries.filter(visible).map((e) => e.descriptor);
      if (this.listings.size >= McpToolView.MAX_LISTINGS) this.listings.clear();
      this.listings.set(key, tools);
    }
    return tools;
  }

  /** The action an MCP tool name stands for, if any. */
  find(name: string): McpToolEntry | undefined {
    this.refresh();
    return this.byName.get(name);
  }

  private refresh(): void {
    if (this.builtFor === this.catalog.version) return;
    const entries: McpToolEntry[] = [];
    const byName = new Map<string, McpToolEntry>();
    for (const a of this.catalog.actionsList()) {
      const entry = toEntry(a);
      if (byName.has(entry.descriptor.name)) continue;
      byName.set(entry.descriptor.name, entry);
      entries.push(entry);
    }
    this.entries = entries;
    this.byName = byName;
    this.builtFor = this.catalog.version;
  }
}

function toEntry(a: RoadAction): McpToolEntry {
  const hints = a.hints ?? {};
  const readOnly = hints.readOnly ?? false;
  const schema = a.paramsSchema as { type?: unknown };
  const inputSchema = (schema.type === "object" ? a.paramsSchema : { type: "object", properties: {} }) as McpToolEntry["descriptor"]["inputSchema"];
  const descriptor: McpToolEntry["descriptor"] = {
    name: mcpToolName(a.tool, a.action),
    description: a.description ?? `${a.tool}:${a.action} through the 4Runr Gateway`,
    inputSchema,
    annotations: {
      readOnlyHint: readOnly,
      // MCP's default for a tool that writes is "destructive"; say so explicitly either way.
      destructiveHint: readOnly ? false : (hints.destructive ?? true),
      idempotentHint: a.idempotent,
      openWorldHint: hints.openWorld ?? true,
    },
  };
  if (hints.title !== undefined) {
    descriptor.title = hints.title;
    descriptor.annotations.title = hints.title;
  }
  return { tool: a.tool, action: a.action, descriptor };
}
