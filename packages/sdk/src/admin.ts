import { requestJson, type FetchLike } from "./http.js";

export interface AgentView {
  id: string;
  name: string;
  role: string;
  status: "active" | "suspended";
  keyAlgorithm: "EdDSA" | "ES256" | "RS256";
  publicKey: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /** Only when the gateway generated the pair, and only in that one answer. */
  privateKey?: string;
}

export interface CredentialView {
  tool: string;
  activeVersion: number | null;
  versions?: { version: number; description?: string | null; createdAt: string; active: boolean }[];
}

export interface PolicyView {
  id?: string;
  name: string;
  version?: number;
  hash?: string;
  subject?: Record<string, unknown>;
  rules: Record<string, unknown>[];
  [extra: string]: unknown;
}

export interface AuditRecordView {
  time: string;
  correlationId: string;
  agentId: string | null;
  tool: string;
  action: string;
  decision: string;
  reason: string | null;
  status: number;
  latencyMs: number;
  [extra: string]: unknown;
}

export interface AuditQuery {
  agentId?: string;
  tool?: string;
  decision?: string;
  correlationId?: string;
  /** Only the changes this operator made (or tried). */
  operator?: string;
  /** `call`: agents' tool calls; `admin`: operators' changes. */
  kind?: "call" | "admin";
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string;
}

export type OperatorRole = "viewer" | "approver" | "admin";

export interface OperatorView {
  id: string;
  name: string;
  role: OperatorRole;
  status: "active" | "disabled";
  createdAt: string;
  updatedAt: string;
  keyRotatedAt: string;
  /** Only when the operator was created or its key rotated, and only in that one answer. */
  key?: string;
}

const query = (q: object) => {
  const params = new URLSearchParams(
    Object.entries(q)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]): [string, string] => [k, String(v)]),
  );
  return params.size > 0 ? `?${params.toString()}` : "";
};
const segment = encodeURIComponent;

/** The operator's client: the admin API, authenticated with an admin (or operator) key, typed end to end. */
export class AdminClient {
  private readonly fetchImpl: FetchLike;

  constructor(private readonly o: { baseUrl: string; adminKey: string; fetch?: FetchLike }) {
    this.fetchImpl = o.fetch ?? ((input, init) => fetch(input, init));
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return requestJson<T>(this.fetchImpl, this.o.baseUrl, method, path, this.o.adminKey, body).then((r) => r.body);
  }

  createAgent(input: { name: string; role: string; publicKey?: string | Record<string, unknown>; keyAlgorithm?: string }) {
    return this.call<AgentView>("POST", "/api/agents", input);
  }
  listAgents(page: { limit?: number; offset?: number } = {}) {
    return this.call<{ agents: AgentView[] }>("GET", `/api/agents${query(page)}`).then((r) => r.agents);
  }
  getAgent(id: string) {
    return this.call<AgentView>("GET", `/api/agents/${segment(id)}`);
  }
  suspendAgent(id: string) {
    return this.call<AgentView>("POST", `/api/agents/${segment(id)}/suspend`);
  }
  activateAgent(id: string) {
    return this.call<AgentView>("POST", `/api/agents/${segment(id)}/activate`);
  }
  revokeAgentTokens(id: string) {
    return this.call<{ revoked: number }>("POST", `/api/agents/${segment(id)}/revoke-tokens`);
  }
  revokeToken(tokenId: string) {
    return this.call<{ revoked: boolean }>("POST", `/api/tokens/${segment(tokenId)}/revoke`);
  }
  listKeys() {
    return this.call<{ keys: { kid: string; alg: string; active: boolean; createdAt: string; retiredAt: string | null }[] }>("GET", "/api/admin/keys");
  }
  rotateKeys() {
    return this.call<{ kid: string }>("POST", "/api/admin/keys/rotate");
  }
  /** Stores (and by default activates) a tool credential; the answer never contains the secret. */
  putCredential(tool: string, secret: string, options: { description?: string; activate?: boolean } = {}) {
    return this.call<CredentialView>("POST", "/api/credentials", { tool, secret, ...options });
  }
  listCredentials() {
    return this.call<{ credentials: CredentialView[] }>("GET", "/api/credentials");
  }
  getCredential(tool: string) {
    return this.call<CredentialView>("GET", `/api/credentials/${segment(tool)}`);
  }
  /** Activates a stored version: a new one, or an older one to roll back. */
  activateCredentialVersion(tool: string, version: number) {
    return this.call<CredentialView>("POST", `/api/credentials/${segment(tool)}/versions/${version}/activate`);
  }
  /** Defines (or replaces) a generic HTTP tool. */
  defineTool(definition: Record<string, unknown>) {
    return this.call<{ tool: Record<string, unknown>; actions: string[] }>("POST", "/api/tools", definition);
  }
  listPolicies() {
    return this.call<{ policies: PolicyView[] }>("GET", "/api/policies");
  }
  /** Creates or replaces a policy (a new version when the name exists). */
  applyPolicy(policy: PolicyView) {
    return this.call<PolicyView>("POST", "/api/policies", policy);
  }
  /** What policy would decide for a call, without counting anything. */
  explain(input: { agentId: string; tool: string; action: string; params?: Record<string, unknown>; scopes?: string[]; intent?: string }) {
    return this.call<Record<string, unknown>>("POST", "/api/policies/explain", input);
  }
  audit(q: AuditQuery = {}) {
    return this.call<{ records: AuditRecordView[]; nextCursor?: string | null }>("GET", `/api/audit${query(q)}`);
  }
  /** Fault injection, e.g. `{serpapi: {timeout: 0.3, error500: 0.25}}`. */
  setChaos(settings: Record<string, Record<string, number>>) {
    return this.call<Record<string, unknown>>("PUT", "/api/admin/chaos", settings);
  }
  clearChaos() {
    return this.call<Record<string, unknown>>("DELETE", "/api/admin/chaos");
  }
  /** Creates a named operator with a role; the answer's `key` is shown this once. */
  createOperator(input: { name: string; role: OperatorRole }) {
    return this.call<OperatorView & { key: string }>("POST", "/api/operators", input);
  }
  listOperators() {
    return this.call<{ operators: OperatorView[] }>("GET", "/api/operators").then((r) => r.operators);
  }
  /** Disables an operator: its key and console sessions stop working at once. */
  disableOperator(id: string) {
    return this.call<OperatorView>("POST", `/api/operators/${segment(id)}/disable`);
  }
  enableOperator(id: string) {
    return this.call<OperatorView>("POST", `/api/operators/${segment(id)}/enable`);
  }
  /** Replaces an operator's key (returned this once); the old key and its sessions stop working. */
  rotateOperatorKey(id: string) {
    return this.call<OperatorView & { key: string }>("POST", `/api/operators/${segment(id)}/rotate`);
  }
  /** Who is signed in to the console: one handle per session (never its id). */
  listConsoleSessions() {
    return this.call<{
      sessions: { handle: string; operator: { id: string; name: string }; createdAt: string; lastSeenAt: string; expiresAt: string; current: boolean }[];
    }>("GET", "/api/operators/sessions").then((r) => r.sessions);
  }
  /** Ends one console session (admin). */
  endConsoleSession(handle: string) {
    return this.call<undefined>("DELETE", `/api/operators/sessions/${segment(handle)}`);
  }
  /** Any other admin route, for features this client has no helper for yet. */
  raw<T>(method: string, path: string, body?: unknown) {
    return this.call<T>(method, path, body);
  }
}
