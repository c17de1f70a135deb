import { createHmac, timingSafeEqual } from "node:crypto";
import type { GuardedHttpClient } from "../net/outbound.js";

/** `X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, like Stripe's. */
export function signCallback(secret: Buffer, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a receiver runs: checks the signature in constant time and the timestamp's freshness. */
export function verifyCallback(secret: Buffer, body: string, header: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || typeof parts.v1 !== "string") return false;
  const expected = Buffer.from(signCallback(secret, body, t).split("v1=")[1]!, "hex");
  const given = Buffer.from(parts.v1, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Notifies a job's callback URL when it finishes. The URL was judged by the SSRF guard when the
 * job was accepted and is judged again here. Best effort with a few bounded retries: the job's
 * status (`GET /api/jobs/:id`) stays the source of truth.
 */
export class CallbackSender {
  constructor(
    private readonly o: {
      client: GuardedHttpClient;
      secret: Buffer;
      now: () => number;
      attempts?: number;
      backoffMs?: number;
      onFailure?: (jobId: string, reason: string) => void;
    },
  ) {}

  /** `idHeader` names what `id` is (`x-gateway-job-id` for jobs, `x-gateway-approval-id` for approvals). */
  async send(url: string, jobId: string, payload: unknown, idHeader = "x-gateway-job-id"): Promise<boolean> {
    const body = JSON.stringify(payload);
    const attempts = this.o.attempts ?? 3;
    let reason = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const response = await this.o.client.request(url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-gateway-signature": signCallback(this.o.secret, body, Math.floor(this.o.now() / 1000)),
            [idHeader]: jobId,
          },
          body,
          signal: AbortSignal.timeout(5000),
          maxBytes: 4096,
          maxRedirects: 0,
        });
        if (response.status >= 200 && response.status < 300) return true;
        reason = `receiver answered ${response.status}`;
        if (response.status < 500 && response.status !== 429) break;
      } catch (err) {
        reason = (err as Error).message;
      }
      if (attempt < attempts) await new Promise((r) => setTimeout(r, (this.o.backoffMs ?? 500) * 2 ** (attempt - 1)));
    }
    this.o.onFailure?.(jobId, reason);
    return false;
  }
}
