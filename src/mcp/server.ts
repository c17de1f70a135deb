import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { ErrorCode, ListToolsRequestSchema, McpError, type CallToolRequest, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import * as z from "zod/v4";
import { isGatewayError } from "../errors/index.js";
import type { VerifiedToken } from "../identity/index.js";
import type { HeldApproval, HeldOutput, ProxyInput, ProxyOutput } from "../proxy/index.js";
import type { McpToolView } from "./tool-view.js";

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** What every MCP request shares: the tool view, the listing rule and the road's one entry point. */
export interface McpServerDeps {
  view: McpToolView;
  /** Deny-by-default listing: whether this token's agent may see the action at all. */
  visible(token: VerifiedToken, tool: string, action: string): boolean;
  /**
   * What `visible` depends on for this token, as a key: two tokens with the same key see the same
   * tools, so the listing is computed once per key (and catalog version). Without it, every
   * `tools/list` is judged afresh.
   */
  listingKey?(token: VerifiedToken): string;
  /** The road: the very entry point `POST /api/proxy` calls. */
  handle(input: ProxyInput): Promise<ProxyOutput | HeldOutput>;
  serverVersion: string;
}

/** One HTTP request's caller, already authenticated by the route. */
export interface McpCaller {
  token: VerifiedToken;
  rawToken: string;
  correlationId: string;
  traceparent?: string;
  /** Fields for the HTTP request's one log line (JSON-RPC method, tool, action, decision). */
  logFields?: Record<string, unknown>;
}

/**
 * The official SDK's MCP server for one HTTP request (stateless Streamable HTTP: every request
 * carries its token, so any instance serves any request). `tools/list` shows what the caller may
 * use; `tools/call` hands the call to the road and turns its answer or refusal into a tool result.
 */
// The low-level Server on purpose: tools are listed and called dynamically from the road's catalog, which McpServer cannot do.
// eslint-disable-next-line @typescript-eslint/no-deprecated
export function createMcpServer(deps: McpServerDeps, caller: McpCaller): Server {
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  const server = new Server(
    { name: "4runr-gateway", title: "4Runr Gateway", version: deps.serverVersion },
    {
      capabilities: { tools: { listChanged: false } },
      // The SDK builds a new Ajv per server unless handed one: one per process, not per request.
      jsonSchemaValidator: sharedValidator,
      instructions:
        "Tools of the 4Runr Gateway. Every call is checked against your token and policy; a refusal comes back as a tool error naming the gateway's error code.",
    },
  );
  let calls = 0;

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    if (caller.logFields !== undefined) caller.logFields.rpc = "tools/list";
    const visible = (e: { tool: string; action: string }) => deps.visible(caller.token, e.tool, e.action);
    const key = deps.listingKey?.(caller.token);
    return {
      tools:
        key === undefined
          ? deps.view
              .all()
              .filter(visible)
              .map((e) => e.descriptor)
          : deps.view.listing(key, visible),
    };
  });

  // The SDK checks the params against CallToolRequestSchema itself and answers -32602 (Invalid
  // params); a strict schema here would turn the same mistake into -32603 (Internal error).
  server.setRequestHandler(LooseCallToolRequest, async (raw): Promise<CallToolResult> => {
    // Already checked against CallToolRequestSchema by the SDK's own wrapper of this handler.
    const request = raw as unknown as CallToolRequest;
    const entry = deps.view.find(request.params.name);
    if (caller.logFields !== undefined) {
      caller.logFields.rpc = "tools/call";
      caller.logFields.tool = entry?.tool ?? request.params.name.slice(0, 80);
      if (entry !== undefined) caller.logFields.action = entry.action;
    }
    if (entry === undefined) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name.slice(0, 80)}`);
    const n = calls++;
    const correlationId = n === 0 ? caller.correlationId : `${caller.correlationId}.${n}`;
    const meta = (request.params._meta ?? {}) as Record<string, unknown>;
    const input: ProxyInput = {
      tool: entry.tool,
      action: entry.action,
      params: request.params.arguments ?? {},
      rawToken: caller.rawToken,
      // Verified by the route for this request: the road's authenticate stage takes it as is (one validation per call).
      principal: caller.token,
      correlationId,
      door: "mcp",
    };
    const key = meta.idempotencyKey;
    if (key !== undefined) {
      if (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key)) {
        return failure("invalid_request", "_meta.idempotencyKey must be 1-255 printable ASCII characters", correlationId);
      }
      input.idempotencyKey = key;
    }
    if (meta.cache === "bypass") input.cacheMode = "bypass";
    const traceparent = typeof meta.traceparent === "string" && TRACEPARENT.test(meta.traceparent) ? meta.traceparent : caller.traceparent;
    if (traceparent !== undefined) input.traceparent = traceparent;
    try {
      const out = await deps.handle(input);
      if ("held" in out) {
        if (caller.logFields !== undefined) Object.assign(caller.logFields, { decision: "pending_approval" });
        return heldResult(out.held, correlationId);
      }
      if (caller.logFields !== undefined) Object.assign(caller.logFields, { decision: "allow", cache: out.meta.cache, attempts: out.meta.attempts });
      const data = out.data;
      return {
        content: [{ type: "text", text: JSON.stringify(data) ?? "null" }],
        structuredContent: isRecord(data) ? data : { result: data },
        _meta: {
          correlationId,
          cache: out.meta.cache,
          attempts: out.meta.attempts,
          upstreamMs: out.meta.upstreamMs,
          gatewayMs: out.meta.gatewayMs,
          ...(out.meta.replayed ? { replayed: true } : {}),
          ...(out.token.refreshRecommended ? { tokenRefresh: "recommended" } : {}),
        },
      };
    } catch (err) {
      if (caller.logFields !== undefined)
        Object.assign(caller.logFields, { decision: "refused", errorCode: isGatewayError(err) ? err.code : "internal_error" });
      if (!isGatewayError(err))
        return failure("internal_error", "the gateway failed to handle this call; quote the correlation id when reporting it", correlationId);
      return failure(err.code, err.message, correlationId, err.details, err.retryAfterSeconds);
    }
  });

  return server;
}

const sharedValidator = new AjvJsonSchemaValidator();
const LooseCallToolRequest = z.object({ method: z.literal("tools/call"), params: z.unknown() });

/**
 * A call policy holds for a person's approval: nothing was sent. Not a failure, and not the tool's
 * answer yet: the approval (the same body POST /api/proxy answers with 202) says how to follow it.
 */
function heldResult(approval: HeldApproval, correlationId: string): CallToolResult {
  return {
    content: [
      {
        type: "text",
        text: `approval_pending: the call is held for a person's approval (approval ${approval.id}, expires ${approval.expiresAt}); GET /api/approvals/${approval.id} with this token tells how it ended`,
      },
    ],
    structuredContent: { approval },
    _meta: { correlationId, approvalId: approval.id },
  };
}

/** A refusal or failure as a tool result: the text names the gateway's code, as the REST door's body does. */
function failure(code: string, message: string, correlationId: string, details?: Record<string, unknown>, retryAfterSeconds?: number): CallToolResult {
  const error: Record<string, unknown> = { code, message, correlationId };
  if (details !== undefined) error.details = details;
  if (retryAfterSeconds !== undefined) error.retryAfterSeconds = retryAfterSeconds;
  return {
    isError: true,
    content: [{ type: "text", text: `${code}: ${message}` }],
    structuredContent: { error },
    _meta: { correlationId, errorCode: code },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
