import { Transform, type Readable } from "node:stream";

const MIN_SECRET_LENGTH = 4;
const MAX_HELD_LINE = 1_048_576;
export const REDACTED = "[REDACTED]";
const UNICODE_ESCAPE = Buffer.from("\\u");
const SLASH_ESCAPE = Buffer.from("\\/");

/**
 * Scrubs known secret values out of text that may have echoed them (an upstream's error
 * message, for one). The set of secrets is replaced whenever the vault changes.
 */
export class Redactor {
  private secrets: string[] = [];
  /** Every form a secret can take in JSON text without escapes (as is, URL-encoded, JSON-escaped), as UTF-8. */
  private jsonForms: Buffer[] = [];
  /** Each secret, longest first, then its URL-encoded form where that differs: computed once, not per line. */
  private textForms: string[] = [];

  setSecrets(secrets: readonly string[]): void {
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
    this.textForms = this.secrets.flatMap((s) => (encodeURIComponent(s) === s ? [s] : [s, encodeURIComponent(s)]));
    this.jsonForms = [...new Set(this.secrets.flatMap((s) => [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)]))].map((form) =>
      Buffer.from(form, "utf8"),
    );
  }

  /**
   * False when JSON (its UTF-8 bytes) certainly holds no secret in any string once parsed, so it can
   * be sent as it is: no secret appears in it in any form, and it has no \u or \/ escape (which could spell one
   * out in characters the search would not see). True sends the answer the slow way: parsed,
   * walked and serialised again.
   */
  mayHoldSecret(json: Buffer): boolean {
    if (this.secrets.length === 0) return false;
    if (json.includes(UNICODE_ESCAPE) || json.includes(SLASH_ESCAPE)) return true;
    for (const form of this.jsonForms) if (json.includes(form)) return true;
    return false;
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
          callback();
          return;
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
    for (const form of this.textForms) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  }

  /** Deep-redacts string leaves (and object keys) of a JSON-like value. */
  redactValue<T>(value: T): T {
    if (this.secrets.length === 0) return value;
    if (typeof value === "string") return this.redact(value) as T;
    if (Array.isArray(value)) return (value as unknown[]).map((v) => this.redactValue(v)) as T;
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.redact(k), this.redactValue(v)])) as T;
    }
    return value;
  }
}

/** Field names that hold credentials whatever the tool (matched case-insensitively, `_`/`-` ignored). */
const CREDENTIAL_FIELD = /(password|passphrase|passwd|secret|token|apikey|accesskey|authorization|cookie|credentials?|privatekey|sessionid|signature)$/i;
/** Values shaped like well-known credentials (bearer headers, provider key prefixes, JWTs). */
const CREDENTIAL_VALUE =
  /^(bearer\s+\S+|basic\s+\S+|sk-[\w-]{8,}|ghp_\w{8,}|xox[abps]-[\w-]{8,}|ya29\.[\w.-]{8,}|AKIA[0-9A-Z]{12,}|eyJ[\w-]+\.[\w-]+\.[\w-]+)$/i;

/**
 * A copy of a JSON-like value safe to show people: fields whose name says credential and strings
 * shaped like one are replaced by [REDACTED]. Iterative (parameters are bounded but may be deep).
 */
export function maskCredentialFields<T>(value: T): T {
  const root: { v: unknown } = { v: value };
  const stack: [Record<string, unknown> | unknown[], string | number, unknown][] = [[root, "v", value]];
  while (stack.length > 0) {
    const [parent, key, v] = stack.pop()!;
    let out: unknown = v;
    if (typeof v === "string") out = CREDENTIAL_VALUE.test(v.trim()) ? REDACTED : v;
    else if (Array.isArray(v)) {
      const copy: unknown[] = [...(v as unknown[])];
      copy.forEach((item, i) => stack.push([copy, i, item]));
      out = copy;
    } else if (v !== null && typeof v === "object") {
      const copy: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) {
        if (CREDENTIAL_FIELD.test(k.replace(/[-_]/g, "")) && item !== null && item !== undefined && item !== "") copy[k] = REDACTED;
        else stack.push([copy, k, item]);
      }
      out = copy;
    }
    (parent as Record<string | number, unknown>)[key] = out;
  }
  return root.v as T;
}
