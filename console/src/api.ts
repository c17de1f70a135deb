/** The console's only way out: same-origin calls to the gateway's public API. */

export interface ApiErrorBody {
  code: string;
  message: string;
  correlationId: string;
  details?: Record<string, unknown>;
}

/** A refusal from the gateway, with its stable code and the correlation id to quote. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }
}

let csrfToken: string | null = null;
let onSignedOut: (reason: string) => void = () => undefined;

/** Kept in memory only (never in page storage); the server hands it out again after a reload. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function onSessionLost(handler: (reason: string) => void): void {
  onSignedOut = handler;
}

export interface RequestOptions {
  body?: unknown;
  /** Send `body` as this content type, as text (YAML policies). */
  contentType?: string;
  /** Statuses that are answers, not errors (e.g. 404 for a feature that is off). */
  accept?: number[];
}

/** Calls the gateway; throws ApiError with the gateway's message and correlation id. */
export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] = options.contentType ?? "application/json";
    body = typeof options.body === "string" && options.contentType !== undefined ? options.body : JSON.stringify(options.body);
  }
  if (method !== "GET" && csrfToken !== null) headers["x-csrf-token"] = csrfToken;
  const response = await fetch(path, { method, headers, ...(body === undefined ? {} : { body }), credentials: "same-origin", cache: "no-store" });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (response.ok || options.accept?.includes(response.status)) return json as T;
  const error = (json as { error?: ApiErrorBody } | undefined)?.error ?? {
    code: `http_${response.status}`,
    message: `the gateway answered ${response.status}`,
    correlationId: response.headers.get("x-correlation-id") ?? "",
  };
  if (response.status === 401 && path !== "/api/console/session")
    onSignedOut(error.code === "session_expired" ? "Your session expired: sign in again." : "You were signed out: sign in again.");
  throw new ApiError(response.status, error);
}

export const get = <T>(path: string, options?: RequestOptions) => api<T>("GET", path, options);
export const post = <T>(path: string, body?: unknown) => api<T>("POST", path, body === undefined ? {} : { body });

/** Builds a query string from the defined, non-empty values. */
export function query(values: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

export type Role = "viewer" | "approver" | "admin";
export interface Operator {
  id: string;
  name: string;
  role: Role;
}
export interface Session {
  operator: Operator;
  csrfToken: string | null;
  expiresAt: string | null;
}

const RANK: Record<Role, number> = { viewer: 1, approver: 2, admin: 3 };
/** Whether the signed-in operator may do what needs `needed` (the server checks again). */
export const can = (session: Session, needed: Role) => RANK[session.operator.role] >= RANK[needed];
