import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, type JWK } from "jose";
import type { SigningKeyRecord, SigningKeyStore } from "../store/index.js";
import { open, seal, type SealedEnvelope } from "../vault/index.js";

export const TOKEN_ALGORITHM = "EdDSA";

interface LoadedKey {
  kid: string;
  publicJwk: Record<string, unknown>;
  publicKey: KeyObject;
  privateKey: KeyObject;
  createdAt: number;
  retiredAt: number | null;
}

/** A signing key rotation made through this keyring. */
export type SigningKeyChange = { type: "signing_key_rotated"; kid: string };

export interface KeyringOptions {
  store: SigningKeyStore;
  masterKey: Buffer;
  now: () => number;
  /** How long a retired key stays valid for verification: the longest token lifetime. */
  retiredKeyGraceMs: number;
  /** Called after this keyring rotated the signing key (other instances reload their keys). */
  onRotated?: (change: SigningKeyChange) => void;
}

/**
 * The gateway's own token-signing keys. Private keys are stored sealed with the master key;
 * the newest unretired key signs, every key not yet past its grace period verifies.
 */
export class Keyring {
  private keys = new Map<string, LoadedKey>();
  private signer: LoadedKey | undefined;
  private lastReloadAt = 0;
  private reloading: Promise<void> | undefined;

  constructor(private readonly options: KeyringOptions) {}

  /** Loads keys from the store, creating the first one on a fresh install. */
  async init(): Promise<void> {
    await this.reload();
    if (this.signer === undefined) {
      await this.createKey();
      await this.reload();
    }
  }

  /** The key new tokens are signed with. */
  current(): { kid: string; privateKey: KeyObject } {
    if (this.signer === undefined) throw new Error("keyring not initialised");
    return { kid: this.signer.kid, privateKey: this.signer.privateKey };
  }

  /** The public key for `kid`, reloading from the store (at most once a second) when another instance rotated. */
  async verificationKey(kid: string): Promise<KeyObject | undefined> {
    const known = this.keys.get(kid);
    if (known !== undefined) return this.usable(known) ? known.publicKey : undefined;
    // A kid we do not know may be a key another instance just created: re-read the store, but at
    // most a few times a second and one read at a time, so made-up kids cannot hammer it.
    if (!/^[A-Za-z0-9_-]{43}$/.test(kid) || this.options.now() - this.lastReloadAt < 200) return undefined;
    this.reloading ??= this.reload().finally(() => (this.reloading = undefined));
    await this.reloading;
    const loaded = this.keys.get(kid);
    return loaded !== undefined && this.usable(loaded) ? loaded.publicKey : undefined;
  }

  /** Synchronous lookup for the hot path; undefined means "ask verificationKey". */
  cachedVerificationKey(kid: string): KeyObject | undefined {
    const known = this.keys.get(kid);
    return known !== undefined && this.usable(known) ? known.publicKey : undefined;
  }

  /** Public keys still valid for verification, as a JWK Set. */
  jwks(): { keys: Record<string, unknown>[] } {
    return {
      keys: [...this.keys.values()].filter((k) => this.usable(k)).map((k) => ({ ...k.publicJwk, kid: k.kid, alg: TOKEN_ALGORITHM, use: "sig" })),
    };
  }

  /** Describes every key (never the private part). */
  list(): { kid: string; alg: string; createdAt: number; retiredAt: number | null; active: boolean }[] {
    return [...this.keys.values()].map((k) => ({
      kid: k.kid,
      alg: TOKEN_ALGORITHM,
      createdAt: k.createdAt,
      retiredAt: k.retiredAt,
      active: k === this.signer,
    }));
  }

  /** Creates a new signing key and retires the old ones; old tokens stay valid until they expire. */
  async rotate(): Promise<string> {
    const previous = [...this.keys.values()].filter((k) => k.retiredAt === null);
    const kid = await this.createKey();
    const at = this.options.now();
    for (const key of previous) await this.options.store.retireSigningKey(key.kid, at);
    await this.reload();
    this.options.onRotated?.({ type: "signing_key_rotated", kid });
    return kid;
  }

  private usable(key: LoadedKey): boolean {
    return key.retiredAt === null || this.options.now() < key.retiredAt + this.options.retiredKeyGraceMs;
  }

  private async createKey(): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const publicJwk = publicKey.export({ format: "jwk" }) as JWK;
    const kid = await calculateJwkThumbprint(publicJwk, "sha256");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const record: SigningKeyRecord = {
      kid,
      alg: TOKEN_ALGORITHM,
      publicJwk: publicJwk,
      privateKeySealed: JSON.stringify(seal(this.options.masterKey, pem, `signing-key:${kid}`)),
      createdAt: this.options.now(),
      retiredAt: null,
    };
    await this.options.store.insertSigningKey(record);
    return kid;
  }

  /** Re-reads the keys (another instance rotated them). */
  refresh(): Promise<void> {
    return this.reload();
  }

  private async reload(): Promise<void> {
    this.lastReloadAt = this.options.now();
    const records = await this.options.store.listSigningKeys();
    const keys = new Map<string, LoadedKey>();
    for (const r of records) {
      let privateKey: KeyObject;
      try {
        const pem = open(this.options.masterKey, JSON.parse(r.privateKeySealed) as SealedEnvelope, `signing-key:${r.kid}`);
        privateKey = createPrivateKey(pem);
      } catch {
        throw new Error(
          "cannot unseal the gateway's signing keys: the master key (GATEWAY_MASTER_KEY or DATA_DIR/master.key) is not the one they were sealed with",
        );
      }
      keys.set(r.kid, {
        kid: r.kid,
        publicJwk: r.publicJwk,
        publicKey: createPublicKey({ key: r.publicJwk as never, format: "jwk" }),
        privateKey,
        createdAt: r.createdAt,
        retiredAt: r.retiredAt,
      });
    }
    this.keys = keys;
    const active = [...keys.values()].filter((k) => k.retiredAt === null).sort((a, b) => b.createdAt - a.createdAt);
    this.signer = active[0];
  }
}
