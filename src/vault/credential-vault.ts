import { GatewayError } from "../errors/index.js";
import type { CredentialStore, CredentialVersionRecord } from "../store/index.js";
import { open, seal, type SealedEnvelope } from "./envelope.js";

const TOOL_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MAX_SECRET_BYTES = 16_384;

/** What the API may show about a credential: never the secret, not even part of it. */
export interface CredentialMetadata {
  tool: string;
  activeVersion: number | null;
  versions: { version: number; description: string | null; createdAt: number; active: boolean }[];
}

export interface CredentialVaultOptions {
  store: CredentialStore;
  masterKey: Buffer;
  now: () => number;
  /** Called whenever the set of known secrets changes, so redaction can follow. */
  onSecretsChanged?: (secrets: readonly string[]) => void;
  /** Called after this vault changed a credential in the store (other instances reload on `credential_activated`). */
  onChange?: (change: CredentialChange) => void;
}

/** A credential change made through this vault. */
export type CredentialChange = { type: "credential_stored" | "credential_activated"; tool: string; version: number };

const contextOf = (tool: string, version: number) => `credential:${tool}:${version}`;
const versionKey = (tool: string, version: number) => `${tool}:${version}`;

/**
 * How long a secret that vanished from the store (deleted by hand or by another instance) is still
 * scrubbed: an upstream or a log may echo a credential for a while after it stopped being used.
 */
export const REMOVED_SECRET_RETENTION_MS = 24 * 3_600_000;

/**
 * Tool credentials, encrypted at rest with envelope encryption (a data key per version, wrapped by
 * the master key). Active secrets are held in memory for the request path; nothing returns them.
 * Every stored version (and any removed in the last day) is also known to the redactor: an old or
 * staged key echoed by an upstream is as secret as the active one.
 */
export class CredentialVault {
  private active = new Map<string, { version: number; secret: string }>();
  /** Every stored version's secret, by `tool:version`, for redaction only. */
  private stored = new Map<string, string>();
  /** Secrets no longer stored, with when they vanished, still scrubbed for a while. */
  private readonly recentlyRemoved = new Map<string, number>();

  constructor(private readonly o: CredentialVaultOptions) {}

  /** Loads and unseals every stored version; the active ones serve the request path. */
  async load(): Promise<void> {
    const actives = new Map((await this.o.store.listActiveCredentials()).map((a) => [versionKey(a.tool, a.version), a]));
    const stored = new Map<string, string>();
    const next = new Map<string, { version: number; secret: string }>();
    for (const record of await this.o.store.listCredentialVersions()) {
      const key = versionKey(record.tool, record.version);
      const active = actives.has(key);
      let secret: string;
      try {
        secret = this.unseal(record);
      } catch (err) {
        // An active credential that cannot be opened is fatal; an old unreadable one cannot leak.
        if (active) throw err;
        continue;
      }
      stored.set(key, secret);
      if (active) next.set(record.tool, { version: record.version, secret });
    }
    const now = this.o.now();
    const still = new Set(stored.values());
    for (const secret of this.stored.values()) if (!still.has(secret)) this.recentlyRemoved.set(secret, now);
    for (const secret of still) this.recentlyRemoved.delete(secret);
    this.stored = stored;
    this.active = next;
    this.secretsChanged();
  }

  private secretsChanged(): void {
    const now = this.o.now();
    for (const [secret, removedAt] of this.recentlyRemoved) if (now - removedAt > REMOVED_SECRET_RETENTION_MS) this.recentlyRemoved.delete(secret);
    this.o.onSecretsChanged?.(this.knownSecrets());
  }

  /** The active secret of a tool, for its adapter only. */
  secretFor(tool: string): string | undefined {
    return this.active.get(tool)?.secret;
  }

  /** Every secret to scrub: all stored versions, active or not, and those removed recently. */
  knownSecrets(): string[] {
    return [...new Set([...this.stored.values(), ...this.recentlyRemoved.keys()])];
  }

  /**
   * Stores a new version of a tool's credential, active at once unless `activate` is false.
   * @throws GatewayError invalid_request
   */
  async put(tool: string, secret: string, options: { description?: string; activate?: boolean } = {}): Promise<CredentialMetadata> {
    if (!TOOL_NAME.test(tool))
      throw new GatewayError("invalid_request", "tool must be a tool name: lower-case letters, digits, '_' or '-'", { details: { field: "tool" } });
    if (secret.length === 0 || Buffer.byteLength(secret) > MAX_SECRET_BYTES) {
      throw new GatewayError("invalid_request", `secret must be 1-${MAX_SECRET_BYTES} bytes`, { details: { field: "secret" } });
    }
    const record = await this.o.store.insertCredentialVersion(
      tool,
      (version) => JSON.stringify(seal(this.o.masterKey, secret, contextOf(tool, version))),
      options.description ?? null,
      this.o.now(),
    );
    this.stored.set(versionKey(tool, record.version), secret);
    if (options.activate !== false) await this.activate(tool, record.version);
    else {
      this.secretsChanged();
      this.o.onChange?.({ type: "credential_stored", tool, version: record.version });
    }
    return this.describe(tool);
  }

  /** Makes `version` the one in use (also how a rollback is done). @throws GatewayError credential_not_found */
  async activate(tool: string, version: number): Promise<CredentialMetadata> {
    const record = await this.o.store.getCredentialVersion(tool, version);
    if (record === undefined) throw new GatewayError("credential_not_found", `no version ${version} of the ${tool.slice(0, 64)} credential`);
    const secret = this.unseal(record);
    await this.o.store.setActiveCredential(tool, version, this.o.now());
    this.active.set(tool, { version, secret });
    this.stored.set(versionKey(tool, version), secret);
    this.secretsChanged();
    this.o.onChange?.({ type: "credential_activated", tool, version });
    return this.describe(tool);
  }

  /** Metadata of one tool's credential. @throws GatewayError credential_not_found */
  async describe(tool: string): Promise<CredentialMetadata> {
    const all = await this.list(tool);
    const found = all[0];
    if (found === undefined) throw new GatewayError("credential_not_found", `no credential stored for tool ${tool.slice(0, 64)}`);
    return found;
  }

  /** Metadata of every stored credential. */
  async list(tool?: string): Promise<CredentialMetadata[]> {
    const versions = await this.o.store.listCredentialVersions(tool);
    const actives = new Map((await this.o.store.listActiveCredentials()).map((a) => [a.tool, a.version]));
    const byTool = new Map<string, CredentialVersionRecord[]>();
    for (const v of versions) byTool.set(v.tool, [...(byTool.get(v.tool) ?? []), v]);
    return [...byTool.entries()].map(([name, list]) => ({
      tool: name,
      activeVersion: actives.get(name) ?? null,
      versions: list.map((v) => ({ version: v.version, description: v.description, createdAt: v.createdAt, active: actives.get(name) === v.version })),
    }));
  }

  private unseal(record: CredentialVersionRecord): string {
    try {
      return open(this.o.masterKey, JSON.parse(record.sealed) as SealedEnvelope, contextOf(record.tool, record.version)).toString("utf8");
    } catch {
      throw new Error(`cannot unseal credential ${record.tool} v${record.version}: wrong master key or tampered record`);
    }
  }
}
