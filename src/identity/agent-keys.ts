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
    keyObject = readPublicKey(input);
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

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;

const privateKeyRefusal = (form: string) =>
  new GatewayError(
    "key_invalid",
    `publicKey is a private key (${form}): send only the public half (SPKI PEM or public JWK), and treat this private key as exposed`,
  );

function refusePrivateJwk(jwk: Record<string, unknown>): void {
  const found = PRIVATE_JWK_MEMBERS.filter((m) => m in jwk);
  if (found.length > 0) throw privateKeyRefusal(`a JWK with private member${found.length > 1 ? "s" : ""} ${found.map((m) => `'${m}'`).join(", ")}`);
}

function refusePrivatePem(text: string): void {
  const labels = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]);
  if (labels.some((l) => l?.includes("PRIVATE"))) throw privateKeyRefusal("a PEM private key block");
  if (labels.length !== 1 || labels[0] !== "PUBLIC KEY") {
    throw new GatewayError("key_invalid", "publicKey must be one '-----BEGIN PUBLIC KEY-----' (SPKI) block or a public JWK");
  }
}

/**
 * createPublicKey would quietly derive the public half from a private key: private material is
 * refused first, in every form (PKCS#8, SEC1 or PKCS#1 PEM; a JWK object or JSON string with
 * private members).
 */
function readPublicKey(input: unknown): KeyObject {
  let jwk: unknown = input;
  if (typeof input === "string") {
    if (input.length > MAX_KEY_TEXT) throw new Error("too long");
    const text = input.trim();
    if (!text.startsWith("{")) {
      refusePrivatePem(text);
      return createPublicKey({ key: text, format: "pem" });
    }
    jwk = JSON.parse(text) as unknown;
  }
  if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk)) throw new Error("not a key");
  refusePrivateJwk(jwk as Record<string, unknown>);
  return createPublicKey({ key: jwk as never, format: "jwk" });
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
