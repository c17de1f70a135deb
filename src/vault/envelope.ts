import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const ALGORITHM = "aes-256-gcm";
const VERSION = "v1";

/** A secret sealed with envelope encryption: a fresh data key per secret, wrapped by the master key. */
export interface SealedEnvelope {
  v: typeof VERSION;
  /** The data key encrypted with the master key (iv.tag.ciphertext, base64url). */
  wrappedKey: string;
  /** The secret encrypted with the data key (iv.tag.ciphertext, base64url). */
  payload: string;
}

function encrypt(key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv(ALGORITHM, key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [iv, cipher.getAuthTag(), ciphertext].map((b) => b.toString("base64url")).join(".");
}

function decrypt(key: Buffer, sealed: string, aad: string): Buffer {
  const [iv, tag, ciphertext] = sealed.split(".").map((p) => Buffer.from(p, "base64url"));
  if (iv === undefined || tag === undefined || ciphertext === undefined) throw new Error("malformed sealed value");
  const decipher = createDecipheriv(ALGORITHM, key, iv);
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/**
 * Seals `plaintext` under `masterKey` (32 bytes). `context` is bound as additional
 * authenticated data, so a sealed value cannot be moved to another record unnoticed.
 */
export function seal(masterKey: Buffer, plaintext: string | Buffer, context: string): SealedEnvelope {
  if (masterKey.length !== 32) throw new Error("master key must be 32 bytes");
  const dataKey = randomBytes(32);
  try {
    return {
      v: VERSION,
      wrappedKey: encrypt(masterKey, dataKey, `key:${context}`),
      payload: encrypt(dataKey, Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, "utf8"), `data:${context}`),
    };
  } finally {
    dataKey.fill(0);
  }
}

/** Opens a sealed envelope; throws if the master key, the context or the ciphertext is wrong. */
export function open(masterKey: Buffer, envelope: SealedEnvelope, context: string): Buffer {
  if (envelope.v !== VERSION) throw new Error(`unsupported envelope version ${String(envelope.v)}`);
  const dataKey = decrypt(masterKey, envelope.wrappedKey, `key:${context}`);
  try {
    return decrypt(dataKey, envelope.payload, `data:${context}`);
  } finally {
    dataKey.fill(0);
  }
}
