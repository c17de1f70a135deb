/**
 * The security probes of the production mix and the one refusal each must get. A probe counts as
 * refused only when the gateway answers with its expected code: a 5xx, a different 4xx or a 2xx is a
 * failed probe, so a gateway that crashes on a forged token can never pass for one that refused it.
 */
export const PROBE_EXPECTED_CODES = {
  out_of_scope: "scope_denied",
  tampered_token: "token_invalid",
  revoked_token: "token_revoked",
  forged_token: "token_invalid",
  expired_token: "token_expired",
  over_quota: "quota_exceeded",
  off_hours: "off_hours",
  rate_limited: "rate_limited",
} as const;

export type ProbeKind = keyof typeof PROBE_EXPECTED_CODES;

/** The code a probe of this kind (`probe:<kind>` or `<kind>`) must be refused with; undefined for an unknown kind. */
export function expectedProbeCode(kind: string): string | undefined {
  const bare = kind.startsWith("probe:") ? kind.slice("probe:".length) : kind;
  return Object.hasOwn(PROBE_EXPECTED_CODES, bare) ? PROBE_EXPECTED_CODES[bare as ProbeKind] : undefined;
}
