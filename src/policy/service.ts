import { randomUUID } from "node:crypto";
import { GatewayError } from "../errors/index.js";
import { UniqueViolation, type MetaStore, type PolicyStore } from "../store/index.js";
import { parsePolicy, policyHash } from "./schema.js";
import type { Policy, PolicyDocument } from "./types.js";

export interface PolicyView {
  id: string;
  name: string;
  version: number;
  hash: string;
  createdAt: string;
  updatedAt: string;
  policy: PolicyDocument;
}

/** A policy created, replaced, patched or deleted through this service. */
export type PolicyChange = { type: "policy_changed"; policyId: string };

interface Cached extends Policy {
  createdAt: number;
  updatedAt: number;
}

/**
 * Policies in the store, mirrored in memory and indexed by subject, so the request path never
 * reads the database. Every write creates a new version and takes effect on the next request.
 */
export class PolicyService {
  private all: Cached[] = [];
  private global: Policy[] = [];
  private byRole = new Map<string, Policy[]>();
  private byAgent = new Map<string, Policy[]>();
  private indexed = 0;

  /** `onChange`: called after this service changed a policy in the store (other instances reload). */
  constructor(private readonly o: { store: PolicyStore; now: () => number; onChange?: (change: PolicyChange) => void }) {}

  /** Loads every policy (at start, and when another instance changed one). */
  async reload(): Promise<void> {
    const rows = await this.o.store.listPolicies();
    this.index(
      rows.map((r) => ({
        id: r.id,
        version: r.version,
        hash: r.hash,
        document: JSON.parse(r.spec) as PolicyDocument,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
      })),
    );
  }

  private index(all: Cached[]): void {
    const global: Policy[] = [];
    const byRole = new Map<string, Policy[]>();
    const byAgent = new Map<string, Policy[]>();
    for (const p of all) {
      const s = p.document.subject;
      if ("all" in s) global.push(p);
      else if ("role" in s) byRole.set(s.role, [...(byRole.get(s.role) ?? []), p]);
      else byAgent.set(s.agentId, [...(byAgent.get(s.agentId) ?? []), p]);
    }
    // Swapped whole, so a request sees either the old set or the new one.
    this.all = all;
    this.global = global;
    this.byRole = byRole;
    this.byAgent = byAgent;
    this.indexed++;
  }

  /** Changes whenever the policies in memory do (a write here, a reload after another instance's): what was judged from the old set must be judged again. */
  get generation(): number {
    return this.indexed;
  }

  /** The policies that apply to an agent: global, its role's, its own. */
  applicable(agentId: string, role: string): Policy[] {
    const r = this.byRole.get(role);
    const a = this.byAgent.get(agentId);
    if (r === undefined && a === undefined) return this.global;
    return [...this.global, ...(r ?? []), ...(a ?? [])];
  }

  count(): number {
    return this.all.length;
  }

  list(): PolicyView[] {
    return this.all.map(view);
  }

  /** @throws GatewayError policy_not_found */
  async get(id: string): Promise<PolicyView & { versions: { version: number; hash: string; createdAt: string; policy: PolicyDocument }[] }> {
    const found = this.all.find((p) => p.id === id) ?? (await this.reload(), this.all.find((p) => p.id === id));
    if (found === undefined) throw new GatewayError("policy_not_found", `no policy with id "${id.slice(0, 80)}"`);
    const versions = await this.o.store.getPolicyVersions(id);
    return {
      ...view(found),
      versions: versions.map((v) => ({
        version: v.version,
        hash: v.hash,
        createdAt: new Date(v.createdAt).toISOString(),
        policy: JSON.parse(v.spec) as PolicyDocument,
      })),
    };
  }

  /** Validates and stores a new policy. @throws GatewayError policy_invalid | conflict */
  async create(input: unknown, format: "json" | "yaml" = "json"): Promise<PolicyView> {
    const document = parsePolicy(input, format);
    const id = `pol_${randomUUID().replaceAll("-", "").slice(0, 20)}`;
    try {
      await this.o.store.insertPolicy({ id, name: document.name, spec: JSON.stringify(document), hash: policyHash(document), at: this.o.now() });
    } catch (err) {
      if (err instanceof UniqueViolation)
        throw new GatewayError("conflict", `a policy named "${document.name}" already exists; update it (PUT /api/policies/:id) instead`);
      throw err;
    }
    await this.changed(id);
    return view(this.all.find((p) => p.id === id)!);
  }

  /** Replaces a policy's document with a new version. */
  async replace(id: string, input: unknown, format: "json" | "yaml" = "json"): Promise<PolicyView> {
    const document = parsePolicy(input, format);
    return this.storeVersion(id, document);
  }

  /** Merges top-level fields (name, description, enabled, subject, rules) into the current document. */
  async patch(id: string, patch: unknown): Promise<PolicyView> {
    const current = this.all.find((p) => p.id === id);
    if (current === undefined) throw new GatewayError("policy_not_found", `no policy with id "${id.slice(0, 80)}"`);
    if (patch === null || typeof patch !== "object" || Array.isArray(patch))
      throw new GatewayError("policy_invalid", "invalid policy: a patch must be a JSON object of top-level fields");
    return this.storeVersion(id, parsePolicy({ ...current.document, ...patch }));
  }

  private async storeVersion(id: string, document: PolicyDocument): Promise<PolicyView> {
    const current = this.all.find((p) => p.id === id);
    if (current !== undefined && current.hash === policyHash(document)) return view(current); // nothing changed: no new version
    let version: number | undefined;
    try {
      version = await this.o.store.addPolicyVersion({ id, name: document.name, spec: JSON.stringify(document), hash: policyHash(document), at: this.o.now() });
    } catch (err) {
      if (err instanceof UniqueViolation) throw new GatewayError("conflict", `another policy is already named "${document.name}"`);
      throw err;
    }
    if (version === undefined) throw new GatewayError("policy_not_found", `no policy with id "${id.slice(0, 80)}"`);
    await this.changed(id);
    return view(this.all.find((p) => p.id === id)!);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.o.store.deletePolicy(id))) throw new GatewayError("policy_not_found", `no policy with id "${id.slice(0, 80)}"`);
    await this.changed(id);
  }

  private async changed(policyId: string): Promise<void> {
    await this.reload();
    this.o.onChange?.({ type: "policy_changed", policyId });
  }
}

function view(p: Cached): PolicyView {
  return {
    id: p.id,
    name: p.document.name,
    version: p.version,
    hash: p.hash,
    createdAt: new Date(p.createdAt).toISOString(),
    updatedAt: new Date(p.updatedAt).toISOString(),
    policy: p.document,
  };
}

/**
 * What a fresh install starts with (deny by default still holds: only these roles get anything).
 * Documented in docs/policy.md.
 */
export const DEFAULT_POLICIES: PolicyDocument[] = [
  {
    name: "default-researcher",
    description: "Researchers search, fetch public pages and chat with an LLM; they never send mail.",
    subject: { role: "researcher" },
    rules: [
      { effect: "allow", scopes: ["serpapi:search", "http_fetch:get", "http_fetch:head", "openai:chat"] },
      { effect: "deny", scopes: ["gmail_send:*"] },
      { id: "openai-cap", effect: "allow", scopes: ["openai:chat"], guards: { max_tokens: { max: 4096, optional: true } } },
    ],
  },
  {
    name: "default-assistant",
    description: "Assistants may use every built-in tool; mail is capped per day and per recipient list.",
    subject: { role: "assistant" },
    rules: [
      { effect: "allow", scopes: ["serpapi:search", "http_fetch:*", "openai:chat", "gmail_send:send"] },
      { id: "mail-recipients", effect: "allow", scopes: ["gmail_send:send"], guards: { "recipients.count": { max: 20 } } },
      { id: "mail-quota", effect: "allow", scopes: ["gmail_send:send"], quota: { limit: 500, per: "day", timeZone: "UTC" } },
    ],
  },
  {
    name: "default-guardrails",
    description: "Every agent: at most 50 calls a second (bursts of 100).",
    subject: { all: true },
    rules: [{ id: "agent-rate", effect: "allow", scopes: ["*"], rateLimit: { perSecond: 50, burst: 100 } }],
  },
];

/**
 * Documented with the default set, not installed (docs/policy.md, "Approvals"): mail from assistants
 * to anyone outside example.com waits for a person; inside example.com it goes at once.
 */
export const EXAMPLE_APPROVAL_POLICY: PolicyDocument = {
  name: "mail-outside-needs-approval",
  subject: { role: "assistant" },
  rules: [
    { effect: "allow", scopes: ["gmail_send:send"] },
    {
      id: "outside-mail",
      effect: "allow",
      scopes: ["gmail_send:send"],
      guards: { "recipients.domain": { oneOf: ["example.com"] } },
      requireApproval: { ttlSeconds: 3600, approvers: ["security-team"] },
    },
  ],
};

/**
 * Installs the default set once, on a store that has never had policies. Runs under the store's
 * migration lock so instances starting together install it exactly once and all see it.
 */
export async function installDefaultPolicies(store: MetaStore & { exclusive<T>(fn: () => Promise<T>): Promise<T> }, service: PolicyService): Promise<boolean> {
  return store.exclusive(async () => {
    await service.reload();
    if ((await store.getMeta("default_policies_installed")) !== undefined || service.count() > 0) return false;
    for (const doc of DEFAULT_POLICIES) await service.create(doc);
    await store.setMeta("default_policies_installed", "done");
    return true;
  });
}
