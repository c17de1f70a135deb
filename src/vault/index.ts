export { seal, open } from "./envelope.js";
export type { SealedEnvelope } from "./envelope.js";
export { CredentialVault } from "./credential-vault.js";
export type { CredentialMetadata, CredentialVaultOptions, CredentialChange } from "./credential-vault.js";
export { Redactor, REDACTED, maskCredentialFields } from "./redactor.js";
