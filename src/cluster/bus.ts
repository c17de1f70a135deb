import type { Redis } from "ioredis";
import { connectRedis } from "../util/redis.js";
import type { ChangeEvent } from "./changes.js";

/** Messages of instances from before typed change events, still understood during a rolling upgrade. */
export type LegacyClusterMessage =
  | { type: "agent_changed"; agentId: string }
  | { type: "credentials_changed" }
  | { type: "tools_changed" }
  | { type: "policies_changed" }
  | { type: "keys_rotated" };

/** What instances tell each other: the change events services publish. Receivers reload what changed. */
export type ClusterMessage = ChangeEvent | LegacyClusterMessage;

export interface ClusterBus {
  readonly kind: "local" | "redis";
  publish(message: ClusterMessage): Promise<void>;
  onMessage(handler: (message: ClusterMessage) => void): void;
  /** `up` when messages flow; `down` while the broker is unreachable (the reconcile loop covers the gap). */
  status(): "up" | "down";
  close(): Promise<void>;
}

/** One instance: nothing to tell anyone. */
export class LocalBus implements ClusterBus {
  readonly kind = "local";
  async publish(): Promise<void> {}
  onMessage(): void {}
  status(): "up" {
    return "up";
  }
  async close(): Promise<void> {}
}

/**
 * Redis pub/sub between instances. Publishing never blocks a request for long: while Redis is
 * down, publish fails fast (offline queue off) and the periodic reconcile in ClusterSync
 * converges every instance from the database instead.
 */
export class RedisBus implements ClusterBus {
  readonly kind = "redis";
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  private handlers: ((m: ClusterMessage) => void)[] = [];

  constructor(
    url: string,
    private readonly o: { instanceId: string; prefix: string; onStatus?: (status: "up" | "down") => void },
  ) {
    const options = {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      retryStrategy: (n: number) => Math.min(n * 200, 2000),
    };
    this.pub = connectRedis(url, options);
    this.sub = connectRedis(url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.channel = `${o.prefix}cluster`;
    for (const client of [this.pub, this.sub]) {
      client.on("error", () => undefined); // state is reported through status(); ioredis reconnects by itself
      client.on("ready", () => this.o.onStatus?.(this.status()));
      client.on("close", () => this.o.onStatus?.("down"));
    }
    void this.sub.subscribe(this.channel).catch(() => undefined);
    this.sub.on("message", (_channel: string, text: string) => {
      let envelope: { from?: string; message?: ClusterMessage };
      try {
        envelope = JSON.parse(text) as typeof envelope;
      } catch {
        return;
      }
      if (envelope.from === this.o.instanceId || envelope.message === undefined) return;
      for (const h of this.handlers) h(envelope.message);
    });
  }

  async ready(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.status() !== "up" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  }

  async publish(message: ClusterMessage): Promise<void> {
    await this.pub.publish(this.channel, JSON.stringify({ from: this.o.instanceId, message }));
  }

  onMessage(handler: (message: ClusterMessage) => void): void {
    this.handlers.push(handler);
  }

  status(): "up" | "down" {
    return this.pub.status === "ready" && this.sub.status === "ready" ? "up" : "down";
  }

  async close(): Promise<void> {
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
