/** Agent key pairs made in the browser: only the public key is sent to the gateway. */

const pem = (label: string, der: ArrayBuffer) => {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
};

export interface BrowserKeyPair {
  algorithm: "EdDSA" | "ES256";
  publicKeyPem: string;
  privateKeyPem: string;
}

/** Ed25519 where the browser has it, else ECDSA P-256; both are accepted by the gateway. */
export async function generateAgentKeys(): Promise<BrowserKeyPair> {
  let pair: CryptoKeyPair;
  let algorithm: BrowserKeyPair["algorithm"] = "EdDSA";
  try {
    pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  } catch {
    algorithm = "ES256";
    pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  }
  return {
    algorithm,
    publicKeyPem: pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", pair.publicKey)),
    privateKeyPem: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
  };
}
