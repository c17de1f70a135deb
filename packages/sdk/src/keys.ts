import { createPrivateKey, randomUUID, sign, type JsonWebKey, type KeyObject } from "node:crypto";

export type SigningAlgorithm = "EdDSA" | "ES256" | "RS256";

/**
 * Signs assertions without the SDK ever holding the key: hand in a signer backed by a KMS or an HSM.
 * `sign` receives the JWS signing input and returns the raw signature as JWS wants it (for ES256 the
 * 64-byte r‖s form, not DER).
 */
export interface AgentSigner {
  algorithm: SigningAlgorithm;
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
}

/** Infers the JWS algorithm an agent key signs with. */
export function algorithmOfKey(key: KeyObject): SigningAlgorithm {
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return "EdDSA";
    case "ec":
      if (key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
        throw new Error(`unsupported EC curve ${String(key.asymmetricKeyDetails?.namedCurve)}: agent keys use P-256`);
      return "ES256";
    case "rsa":
      return "RS256";
    default:
      throw new Error(`unsupported agent key type ${String(key.asymmetricKeyType)}`);
  }
}

/** A signer over a private key held in this process (PKCS#8 PEM, a private JWK, or a KeyObject). */
export function keySigner(privateKey: string | KeyObject | JsonWebKey): AgentSigner {
  const key =
    typeof privateKey === "string"
      ? createPrivateKey(privateKey)
      : "asymmetricKeyType" in privateKey
        ? (privateKey as KeyObject)
        : createPrivateKey({ key: privateKey as JsonWebKey, format: "jwk" });
  if (key.type !== "private") throw new Error("an agent signs with its private key; this is a public key");
  const algorithm = algorithmOfKey(key);
  return {
    algorithm,
    async sign(input) {
      if (algorithm === "EdDSA") return sign(null, input, key);
      if (algorithm === "ES256") return sign("sha256", input, { key, dsaEncoding: "ieee-p1363" });
      return sign("sha256", input, key);
    },
  };
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/**
 * The proof of possession: a compact JWS signed by the agent, `iss` = `sub` = agent id, `aud` =
 * the gateway's issuer (or its token endpoint URL for OAuth), a single-use `jti`, valid `lifetimeSeconds`.
 */
export async function signAssertion(
  signer: AgentSigner,
  o: { agentId: string; audience: string; nowMs: number; lifetimeSeconds?: number; jti?: string },
): Promise<string> {
  const iat = Math.floor(o.nowMs / 1000);
  const signingInput = `${b64url({ alg: signer.algorithm, typ: "JWT" })}.${b64url({ iss: o.agentId, sub: o.agentId, aud: o.audience, iat, exp: iat + (o.lifetimeSeconds ?? 60), jti: o.jti ?? randomUUID() })}`;
  const signature = await signer.sign(Buffer.from(signingInput));
  return `${signingInput}.${Buffer.from(signature).toString("base64url")}`;
}
