import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { GatewayError } from "../errors/index.js";
import type { KeyAlgorithm } from "../store/index.js";

export interface AgentPublicKey {
  algorithm: KeyAlgorithm;
  jwk: Record<string, unknown>;
  keyObject: KeyObject;
}

const MIN_RSA_BITS = 2048;
const MAX_KEY_TEXT = 16_384;

/**
 * Accepts an agent's public key as PEM (SPKI) or JWK (object or JSON string) and tells which
 * signature algorithm it implies. Only Ed25519, ECDSA P-256 and RSA ≥ 2048 bits are accepted.
 * @throws GatewayError `key_invalid`
 */
export function parseAgentPublicKey(input: unknown): AgentPublicKey {
  let keyObject: KeyObject;
  try {
    if (typeof input === "string") {
      if (input.length > MAX_KEY_TEXT) throw new Error("too long");
      const text = input.trim();
      keyObject = text.startsWith("{")
        ? createPublicKey({ key: JSON.parse(text) as Record<string, unknown> as never, format: "jwk" })
        : createPublicKey({ key: text, format: "pem" });
    } else if (input !== null && typeof input === "object") {
      if ("d" in input) throw new GatewayError("key_invalid", "publicKey must not contain private key material (the JWK has a 'd' member)");
      keyObject = createPublicKey({ key: input as never, format: "jwk" });
    } else {
      throw new Error("not a key");
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError("key_invalid", "publicKey is not a readable public key: send an SPKI PEM or a public JWK");
  }
  if (keyObject.type !== "public") {
    throw new GatewayError("key_invalid", "publicKey must be a public key, not a private one");
  }
  const details = keyObject.asymmetricKeyDetails ?? {};
  let algorithm: KeyAlgorithm;
  switch (keyObject.asymmetricKeyType) {
    case "ed25519":
      algorithm = "EdDSA";
      break;
    case "ec":
      if (details.namedCurve !== "prime256v1") {
        throw new GatewayError("key_invalid", `ECDSA keys must use curve P-256, got ${String(details.namedCurve)}`);
      }
      algorithm = "ES256";
      break;
    case "rsa":
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) {
        throw new GatewayError("key_invalid", `RSA keys must be at least ${MIN_RSA_BITS} bits, got ${String(details.modulusLength)}`);
      }
      algorithm = "RS256";
      break;
    default:
      throw new GatewayError("key_invalid", `unsupported key type ${String(keyObject.asymmetricKeyType)}: use Ed25519, ECDSA P-256 or RSA ≥ 2048`);
  }
  const jwk = keyObject.export({ format: "jwk" }) as Record<string, unknown>;
  return { algorithm, jwk, keyObject };
}

export interface GeneratedKeyPair {
  algorithm: KeyAlgorithm;
  publicKeyPem: string;
  privateKeyPem: string;
}

/** Generates an agent key pair (Ed25519 by default). */
export function generateAgentKeyPair(algorithm: KeyAlgorithm = "EdDSA"): GeneratedKeyPair {
  const pair =
    algorithm === "EdDSA"
      ? generateKeyPairSync("ed25519")
      : algorithm === "ES256"
        ? generateKeyPairSync("ec", { namedCurve: "prime256v1" })
        : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    algorithm,
    publicKeyPem: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
    privateKeyPem: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}
