import type { IdentityService } from "../identity/index.js";
import type { AgentStore, TokenStore } from "../store/index.js";
import type { ClusterBus, ClusterMessage } from "./bus.js";
import type { ChangeFeed } from "./changes.js";

export interface Reloadable {
  credentials: () => Promise<void>;
  tools: () => Promise<void>;
  policies?: () => Promise<void>;
  signingKeys: () => Promise<void>;
}

/**
 * Keeps this instance's in-memory state (revocations, agent status, credentials, tools, policies)
 * in step with the others: every change event a service publishes here goes on the bus and is
 * applied by the others within milliseconds, and a periodic reconcile against the database
 * catches anything a lost message missed.
 */
export class ClusterSync {
  private timer: NodeJS.Timeout | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private lastReconcile: number;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly o: {
      bus: ClusterBus;
      changes: ChangeFeed;
      store: Pick<AgentStore, "agentIdsUpdatedSince"> & Pick<TokenStore, "revokedTokenIdsSince">;
      identity: IdentityService;
      reload: Reloadable;
      now: () => number;
      reconcileMs: number;
      onError?: (err: unknown, what: string) => void;
    },
  ) {
    this.lastReconcile = o.now();
    o.bus.onMessage((m) => void this.apply(m).catch((err: unknown) => this.o.onError?.(err, m.type)));
  }

  announce(message: ClusterMessage): void {
    if (this.o.bus.kind === "local") return;
    this.o.bus.publish(message).catch((err: unknown) => this.o.onError?.(err, `publish ${message.type}`));
  }

  /** Applies a change made on another instance. */
  async apply(message: ClusterMessage): Promise<void> {
    switch (message.type) {
      case "tokens_revoked":
        this.o.identity.markRevoked(message.tokenIds);
        return;
      case "agent_created":
      case "agent_status_changed":
      case "agent_changed":
        this.o.identity.forgetAgent(message.agentId);
        return;
      case "credential_activated":
      case "credentials_changed":
        return this.o.reload.credentials();
      case "credential_stored":
        return; // an inactive version: nothing in memory depends on it
      case "tool_defined":
      case "tool_removed":
      case "tools_changed":
        return this.o.reload.tools();
      case "policy_changed":
      case "policies_changed":
        return this.o.reload.policies?.();
      case "signing_key_rotated":
      case "keys_rotated":
        return this.o.reload.signingKeys();
    }
  }

  start(): void {
    this.unsubscribe = this.o.changes.subscribe((change) => this.announce(change));
    if (this.o.bus.kind === "local") return;
    this.timer = setInterval(() => void this.reconcile().catch((err: unknown) => this.o.onError?.(err, "reconcile")), this.o.reconcileMs);
    this.timer.unref();
    this.fullTimer = setInterval(() => void this.reloadAll().catch((err: unknown) => this.o.onError?.(err, "reload")), this.o.reconcileMs * 6);
    this.fullTimer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    clearInterval(this.timer);
    clearInterval(this.fullTimer);
  }

  /** Applies revocations and agent changes recorded since the last pass (with overlap for clock skew). */
  async reconcile(): Promise<void> {
    const since = this.lastReconcile - 60_000;
    const started = this.o.now();
    const [revoked, agents] = await Promise.all([this.o.store.revokedTokenIdsSince(since, 10_000), this.o.store.agentIdsUpdatedSince(since, 10_000)]);
    this.o.identity.markRevoked(revoked);
    for (const id of agents) this.o.identity.forgetAgent(id);
    this.lastReconcile = started;
  }

  async reloadAll(): Promise<void> {
    await Promise.all([this.o.reload.credentials(), this.o.reload.tools(), this.o.reload.policies?.(), this.o.reload.signingKeys()]);
  }
}
