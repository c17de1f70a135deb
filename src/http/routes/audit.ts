import type { FastifyInstance } from "fastify";
import { ADMIN_ONLY } from "../auth.js";
import { GatewayError } from "../../errors/index.js";
import type { AuditLog } from "../../audit/index.js";
import type { AuditQuery, AuditStore } from "../../store/index.js";

const encodeCursor = (at: number, id: string) => Buffer.from(JSON.stringify([at, id])).toString("base64url");
function decodeCursor(cursor: string): { at: number; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString()) as [unknown, unknown];
    if (typeof at === "number" && typeof id === "string") return { at, id };
  } catch {
    // fall through
  }
  throw new GatewayError("invalid_request", "cursor is not one this API returned", { details: { field: "cursor" } });
}
function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new GatewayError("invalid_request", `${field} must be an ISO-8601 time or epoch milliseconds`, { details: { field } });
  return ms;
}

/** `GET /api/audit`: the audit trail, newest first, with filters and cursor paging (admin). */
export function registerAuditRoutes(app: FastifyInstance, deps: { store: AuditStore; audit: AuditLog }) {
  app.get(
    "/api/audit",
    {
      config: ADMIN_ONLY,
      schema: {
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            agentId: { type: "string", maxLength: 128 },
            tool: { type: "string", maxLength: 64 },
            decision: { type: "string", enum: ["allow", "deny", "error"] },
            from: { type: "string", maxLength: 40 },
            to: { type: "string", maxLength: 40 },
            limit: { type: "string", pattern: "^(?:[1-9]\\d{0,2}|1000)$" },
            cursor: { type: "string", maxLength: 512 },
          },
        },
      },
    },
    async (request) => {
      const q = request.query as Record<string, string | undefined>;
      // Records still in the write buffer are part of the trail too.
      await deps.audit.flush();
      const limit = Number(q.limit ?? 100);
      const query: AuditQuery = { limit };
      if (q.agentId !== undefined) query.agentId = q.agentId;
      if (q.tool !== undefined) query.tool = q.tool;
      if (q.decision !== undefined) query.decision = q.decision as AuditQuery["decision"] & string;
      const from = parseTime(q.from, "from");
      const to = parseTime(q.to, "to");
      if (from !== undefined) query.from = from;
      if (to !== undefined) query.to = to;
      if (q.cursor !== undefined) query.before = decodeCursor(q.cursor);
      const records = await deps.store.queryAudit(query);
      const last = records[records.length - 1];
      return {
        records: records.map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
        nextCursor: records.length === limit && last !== undefined ? encodeCursor(last.at, last.id) : null,
      };
    },
  );
}
