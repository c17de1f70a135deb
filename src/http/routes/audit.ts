import type { FastifyInstance } from "fastify";
import { PRINTABLE_ID } from "../schemas.js";
import { GatewayError } from "../../errors/index.js";
import type { AuditLog, AuditVerification } from "../../audit/index.js";
import type { AuditQuery, AuditStore } from "../../store/index.js";
import { DOORS } from "../../proxy/index.js";

/** The last millisecond a JavaScript Date can hold: every stored time is within it (and within BIGINT). */
const MAX_TIME_MS = 8_640_000_000_000_000;
const isTimeMs = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= MAX_TIME_MS;
const CURSOR_ID = new RegExp(PRINTABLE_ID);

const encodeCursor = (at: number, id: string) => Buffer.from(JSON.stringify([at, id])).toString("base64url");
function decodeCursor(cursor: string): { at: number; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, "base64url").toString()) as [unknown, unknown];
    // Only what encodeCursor writes: a stored time and a record id (PostgreSQL refuses the rest loudly).
    if (isTimeMs(at) && typeof id === "string" && id.length <= 128 && CURSOR_ID.test(id)) return { at, id };
  } catch {
    // fall through
  }
  throw new GatewayError("invalid_request", "cursor is not one this API returned: pass nextCursor from the previous page as is", {
    details: { field: "cursor" },
  });
}
function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{1,16}$/.test(value) ? Number(value) : /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (!isTimeMs(ms)) {
    throw new GatewayError("invalid_request", `${field} must be an ISO-8601 time (e.g. 2026-11-23T12:00:00Z) or epoch milliseconds, between 1970 and 275760`, {
      details: { field },
    });
  }
  return ms;
}

/**
 * `GET /api/audit`: the audit trail, newest first, with filters and cursor paging (viewer).
 * `GET /api/audit/verify`: walks every hash chain and reports the first broken link of each (viewer).
 */
export function registerAuditRoutes(app: FastifyInstance, deps: { store: AuditStore; audit: AuditLog; verify: () => Promise<AuditVerification> }) {
  app.get("/api/audit/verify", { config: { role: "admin" } }, async () => deps.verify());

  app.get(
    "/api/audit",
    {
      config: { role: "viewer" },
      schema: {
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            agentId: { type: "string", maxLength: 128, pattern: PRINTABLE_ID },
            tool: { type: "string", maxLength: 64, pattern: PRINTABLE_ID },
            decision: { type: "string", enum: ["allow", "deny", "error", "pending_approval", "approval_granted", "approval_denied", "approval_expired"] },
            correlationId: { type: "string", minLength: 1, maxLength: 128 },
            operator: { type: "string", minLength: 1, maxLength: 64 },
            kind: { type: "string", enum: ["call", "admin"] },
            door: { type: "string", enum: DOORS },
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
      if (q.correlationId !== undefined) query.correlationId = q.correlationId;
      if (q.operator !== undefined) query.operator = q.operator;
      if (q.kind !== undefined) query.kind = q.kind as "call" | "admin";
      if (q.door !== undefined) query.door = q.door;
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
