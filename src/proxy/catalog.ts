import type { Readable } from "node:stream";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { GatewayError } from "../errors/index.js";
import { linearRegExpEngine } from "../util/linear-regexp.js";

/** What the road needs to know about one tool action; adapters are turned into these. */
export interface RoadAction {
  tool: string;
  action: string;
  description?: string;
  /** JSON Schema (draft-07) of `params`. */
  paramsSchema: Record<string, unknown>;
  idempotent: boolean;
  cacheable: boolean;
  cacheTtlSeconds?: number;
  timeoutMs?: number;
  /** Whether the adapter needs a stored credential to call its upstream. */
  needsCredential: boolean;
  /** The metric label for the tool (generic tools share one). */
  metricTool?: string;
  /** What the action does to the world, for agents choosing tools (MCP tool annotations). */
  hints?: ActionHints;
  invoke(params: Record<string, unknown>, ctx: InvokeContext): Promise<UpstreamReply>;
}

/** MCP-style behaviour hints of an action; unset fields are derived (see src/mcp). */
export interface ActionHints {
  readOnly?: boolean;
  destructive?: boolean;
  openWorld?: boolean;
  /** A human-readable title. */
  title?: string;
}

export interface InvokeContext {
  credential: string | undefined;
  signal: AbortSignal;
  correlationId: string;
  traceparent?: string;
  /** The door asked for the answer as it arrives (server-sent events): an adapter that can stream returns `stream`. */
  stream?: boolean;
  /** Throws (GatewayError guard_failed) when policy refuses a redirect target; a tool calls it before following one. */
  checkRedirect?: (target: string) => void;
}

export interface UpstreamReply {
  status: number;
  body: unknown;
  bytes: number;
  /**
   * The body's JSON bytes exactly as the upstream sent them (an API answer read whole and parsed):
   * doors send them on without serialising `body` again, nor encoding it. A stage that changes
   * `body` drops them.
   */
  raw?: Buffer;
  /** A body still arriving (server-sent events): stages pass it through untouched but for redaction, the door pipes it to the client. */
  stream?: Readable;
  headers?: Record<string, string>;
}

/**
 * A reply kept as its JSON bytes (the response cache keeps answers this way: bytes cost their
 * length, a parsed tree several times that). `body` is parsed when a stage first reads it, and an
 * own enumerable property, so a spread copy keeps it.
 */
export function replyFromJsonBytes(status: number, raw: Buffer, bytes: number, headers?: Record<string, string>): UpstreamReply {
  let parsed: unknown;
  let done = false;
  const reply = { status, raw, bytes, ...(headers === undefined ? {} : { headers }) } as UpstreamReply;
  Object.defineProperty(reply, "body", {
    enumerable: true,
    get() {
      if (!done) {
        parsed = JSON.parse(raw.toString("utf8"));
        done = true;
      }
      return parsed;
    },
  });
  return reply;
}

/**
 * The reply without its bytes, with `body` (by default its own): for a new body the bytes no longer
 * say the same, and a store that keeps results as JSON (idempotency in Redis or SQL) would turn
 * them into something that is not bytes.
 */
export function withoutRaw(reply: UpstreamReply, body: unknown = reply.body): UpstreamReply {
  const { raw: _raw, ...rest } = reply;
  return { ...rest, body };
}

export interface ResolvedAction extends RoadAction {
  validate: ValidateFunction;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function describeIssue(e: ErrorObject): { path: string; message: string } {
  const base = `params${e.instancePath.replaceAll("/", ".")}`;
  if (e.keyword === "additionalProperties") return { path: `${base}.${String(e.params.additionalProperty)}`, message: "is not a parameter of this action" };
  if (e.keyword === "required") return { path: `${base}.${String(e.params.missingProperty)}`, message: "is required" };
  return { path: base, message: e.message ?? "is invalid" };
}

/** The tools the gateway knows, with compiled parameter validators. Replaced whole on changes. */
export class ToolCatalog {
  private readonly ajv: Ajv;
  private actions = new Map<string, ResolvedAction>();
  private changes = 0;

  constructor() {
    // `pattern`s (generic tools' are admin-written) run on RE2: an agent's value cannot pin the event loop.
    this.ajv = new Ajv({
      allErrors: true,
      strict: false,
      coerceTypes: false,
      removeAdditional: false,
      useDefaults: true,
      code: { regExp: linearRegExpEngine },
    });
    addFormats(this.ajv);
  }

  /** Adds or replaces actions (compiling their schemas once). @throws Error on an invalid schema. */
  register(actions: readonly RoadAction[]): void {
    const next = new Map(this.actions);
    for (const a of actions) next.set(`${a.tool}:${a.action}`, { ...a, validate: this.ajv.compile(a.paramsSchema) });
    this.actions = next;
    this.changes++;
  }

  /** Changes whenever actions are added or removed (views derived from the catalog key on it). */
  get version(): number {
    return this.changes;
  }

  /** Every action as registered (with its hints), without validating anything. */
  actionsList(): readonly RoadAction[] {
    return [...this.actions.values()];
  }

  /** Removes every action of a tool. */
  unregister(tool: string): void {
    const next = new Map(this.actions);
    for (const key of next.keys()) if (key.startsWith(`${tool}:`)) next.delete(key);
    this.actions = next;
    this.changes++;
  }

  hasTool(tool: string): boolean {
    for (const a of this.actions.values()) if (a.tool === tool) return true;
    return false;
  }

  /**
   * Finds an action and validates its parameters.
   * @throws GatewayError unknown_tool | unknown_action | invalid_request (naming every bad field)
   */
  resolve(tool: string, action: string, params: Record<string, unknown>): ResolvedAction {
    const found = this.actions.get(`${tool}:${action}`);
    if (found === undefined) {
      if (!this.hasTool(tool)) {
        throw new GatewayError(
          "unknown_tool",
          `no tool named "${tool.slice(0, 64)}"; known tools: ${[...new Set([...this.actions.values()].map((a) => a.tool))].join(", ")}`,
        );
      }
      const known = [...this.actions.values()].filter((a) => a.tool === tool).map((a) => a.action);
      throw new GatewayError("unknown_action", `tool ${tool} has no action "${action.slice(0, 64)}"; its actions: ${known.join(", ")}`);
    }
    if (!found.validate(params)) {
      const issues = (found.validate.errors ?? []).slice(0, 10).map(describeIssue);
      const first = issues[0];
      throw new GatewayError("invalid_request", `invalid parameters for ${tool}:${action}: ${first ? `${first.path} ${first.message}` : "validation failed"}`, {
        details: { issues },
      });
    }
    return found;
  }

  /** Every action, for discovery (`GET /api/tools`). */
  list(): { tool: string; action: string; description?: string; idempotent: boolean; cacheable: boolean; paramsSchema: Record<string, unknown> }[] {
    return [...this.actions.values()].map((a) => ({
      tool: a.tool,
      action: a.action,
      ...(a.description === undefined ? {} : { description: a.description }),
      idempotent: a.idempotent,
      cacheable: a.cacheable,
      paramsSchema: a.paramsSchema,
    }));
  }
}
