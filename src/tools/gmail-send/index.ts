import { randomBytes } from "node:crypto";
import type { RoadAction } from "../../proxy/catalog.js";
import type { ApiClient } from "../upstream.js";

const ADDRESS = { type: "string", format: "email", maxLength: 320 } as const;
const ADDRESSES = { anyOf: [ADDRESS, { type: "array", minItems: 1, maxItems: 100, items: ADDRESS }] } as const;
/** Header values must never carry a line break: that would let a caller inject headers. */
const HEADER_TEXT = { type: "string", maxLength: 998, pattern: "^[^\\r\\n]*$" } as const;

export function recipientsOf(value: unknown): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

function encodeHeaderWord(text: string): string {
  return /^[\x20-\x7e]*$/.test(text) ? text : `=?UTF-8?B?${Buffer.from(text, "utf8").toString("base64")}?=`;
}

/** Builds the RFC 822 message Gmail's `users.messages.send` takes as `raw` (base64url). */
export function buildMimeMessage(params: Record<string, unknown>): string {
  const lines = [`To: ${recipientsOf(params.to).join(", ")}`];
  const cc = recipientsOf(params.cc);
  if (cc.length > 0) lines.push(`Cc: ${cc.join(", ")}`);
  const bcc = recipientsOf(params.bcc);
  if (bcc.length > 0) lines.push(`Bcc: ${bcc.join(", ")}`);
  if (typeof params.replyTo === "string") lines.push(`Reply-To: ${params.replyTo}`);
  lines.push(`Subject: ${encodeHeaderWord(String(params.subject ?? ""))}`, "MIME-Version: 1.0");
  const text = typeof params.text === "string" ? params.text : undefined;
  const html = typeof params.html === "string" ? params.html : undefined;
  const part = (type: string, body: string) => [
    `Content-Type: ${type}; charset="UTF-8"`,
    "Content-Transfer-Encoding: base64",
    "",
    Buffer.from(body, "utf8").toString("base64"),
  ];
  if (text !== undefined && html !== undefined) {
    const boundary = `b_${randomBytes(12).toString("hex")}`;
    lines.push(
      `Content-Type: multipart/alternative; boundary="${boundary}"`,
      "",
      `--${boundary}`,
      ...part("text/plain", text),
      `--${boundary}`,
      ...part("text/html", html),
      `--${boundary}--`,
    );
  } else if (html !== undefined) lines.push(...part("text/html", html));
  else lines.push(...part("text/plain", text ?? ""));
  return Buffer.from(lines.join("\r\n"), "utf8").toString("base64url");
}

/** `gmail_send:send`: sends one message as the mailbox whose OAuth token is the stored credential. Never idempotent. */
export function gmailSendTool(deps: { baseUrl: string; api: ApiClient }): RoadAction[] {
  return [
    {
      tool: "gmail_send",
      action: "send",
      description: "Send an email (Gmail users.messages.send). Returns {id, threadId, labelIds}. Use an Idempotency-Key header.",
      paramsSchema: {
        type: "object",
        additionalProperties: false,
        required: ["to", "subject"],
        anyOf: [{ required: ["text"] }, { required: ["html"] }],
        properties: {
          to: ADDRESSES,
          cc: ADDRESSES,
          bcc: ADDRESSES,
          replyTo: ADDRESS,
          subject: HEADER_TEXT,
          text: { type: "string", maxLength: 1_000_000 },
          html: { type: "string", maxLength: 1_000_000 },
        },
      },
      idempotent: false,
      hints: { title: "Send an email", readOnly: false, destructive: true, openWorld: true },
      cacheable: false,
      timeoutMs: 20_000,
      needsCredential: true,
      invoke(params, ctx) {
        return deps.api.json(
          "gmail_send",
          new URL("/gmail/v1/users/me/messages/send", deps.baseUrl),
          { method: "POST", bearer: true, body: { raw: buildMimeMessage(params) } },
          ctx,
        );
      },
    },
  ];
}
