const MIN_SECRET_LENGTH = 4;
export const REDACTED = "[REDACTED]";

/**
 * Scrubs known secret values out of text that may have echoed them (an upstream's error
 * message, for one). The set of secrets is replaced whenever the vault changes.
 */
export class Redactor {
  private secrets: string[] = [];

  setSecrets(secrets: readonly string[]): void {
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  }

  addSecret(secret: string): void {
    this.setSecrets([...this.secrets, secret]);
  }

  /** Returns `text` with every known secret (and its URL-encoded form) replaced by [REDACTED]. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED);
      const encoded = encodeURIComponent(secret);
      if (encoded !== secret && out.includes(encoded)) out = out.split(encoded).join(REDACTED);
    }
    return out;
  }

  /** Deep-redacts string leaves of a JSON-like value. */
  redactValue<T>(value: T): T {
    if (this.secrets.length === 0) return value;
    if (typeof value === "string") return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.redactValue(v)) as T;
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.redactValue(v)])) as T;
    }
    return value;
  }
}
