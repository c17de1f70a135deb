import { Transform, type Readable } from "node:stream";

const MIN_SECRET_LENGTH = 4;
const MAX_HELD_LINE = 1_048_576;
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

  /**
   * A text stream (server-sent events) with every known secret scrubbed, line by line: each line is
   * held until it is complete so a secret split across two chunks is still found. A line longer than
   * 1 MiB is scrubbed and let through in parts (no event of the APIs we front comes near that).
   */
  redactLines(source: Readable): Readable {
    let pending = "";
    const scrub = new Transform({
      transform: (chunk: Buffer, _enc, callback) => {
        const text = pending + chunk.toString("utf8");
        const cut = text.lastIndexOf("\n") + 1;
        if (cut === 0 && text.length <= MAX_HELD_LINE) {
          pending = text;
          return callback();
        }
        const ready = cut === 0 ? text : text.slice(0, cut);
        pending = cut === 0 ? "" : text.slice(cut);
        callback(null, this.redact(ready));
      },
      flush: (callback) => callback(null, pending === "" ? undefined : this.redact(pending)),
    });
    source.on("error", (err) => scrub.destroy(err));
    scrub.on("close", () => {
      if (!source.destroyed) source.destroy();
    });
    return source.pipe(scrub);
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
