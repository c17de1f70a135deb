import type { AgentStatus } from "../store/index.js";
import type { CredentialChange } from "../vault/index.js";
import type { PolicyChange } from "../policy/service.js";
import type { ToolChange } from "../tools/index.js";
import type { SigningKeyChange } from "../identity/keyring.js";

/** Identity changes, published through the identity service's events. */
export type IdentityChange =
  | { type: "agent_created"; agentId: string }
  | { type: "agent_status_changed"; agentId: string; status: AgentStatus }
  | { type: "tokens_revoked"; tokenIds: string[] };

/**
 * A change to shared state, published by the service that made it (never inferred from a URL).
 * Every instance applies it (src/cluster/sync.ts); the change-event test walks every mutating
 * admin route and fails if one changes state without publishing one of these.
 */
export type ChangeEvent = IdentityChange | CredentialChange | PolicyChange | ToolChange | SigningKeyChange;

/** Where services publish their changes; the cluster sync (and tests) subscribe. */
export class ChangeFeed {
  private readonly listeners: ((change: ChangeEvent) => void)[] = [];

  publish(change: ChangeEvent): void {
    for (const listener of this.listeners) listener(change);
  }

  /** @returns a function that unsubscribes */
  subscribe(listener: (change: ChangeEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}
