import ipaddr from "ipaddr.js";
import { GatewayError } from "../errors/index.js";

/**
 * The pure half of SSRF protection: which URLs and which IP addresses an outbound call may reach.
 * Deny private, loopback, link-local, multicast, reserved and cloud-metadata space by default;
 * an operator allow-list (CIDRs) can open specific ranges (tests allow 127.0.0.1/32).
 */

/** ipaddr.js range names that are public, routable unicast. Everything else is refused. */
const PUBLIC_RANGES = new Set(["unicast"]);

/** Cloud metadata endpoints that sit in otherwise routable space on some providers. */
const METADATA_ADDRESSES = new Set(["169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192"]);

/** Names of cloud metadata services, refused whatever they resolve to (or if they do not resolve here). */
const METADATA_HOSTNAMES = new Set([
  "metadata.google.internal",
  "metadata.goog",
  "metadata",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.azure.internal",
  "metadata.platformequinix.com",
]);

export type AddressVerdict = { allowed: true } | { allowed: false; range: string };

export class AddressAllowList {
  private readonly cidrs: [ipaddr.IPv4 | ipaddr.IPv6, number][];

  constructor(entries: readonly string[] = []) {
    this.cidrs = entries.map((entry) => {
      const text = entry.includes("/") ? entry : `${entry}/${ipaddr.parse(entry).kind() === "ipv4" ? 32 : 128}`;
      return ipaddr.parseCIDR(text);
    });
  }

  /** @throws Error naming the entry when it is not an IP or CIDR. */
  static parse(text: string | undefined): AddressAllowList {
    const entries = (text ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    for (const e of entries) {
      if (!(ipaddr.isValidCIDR(e) || ipaddr.isValid(e))) throw new Error(`"${e}" is not an IP address or CIDR range`);
    }
    return new AddressAllowList(entries);
  }

  includes(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    return this.cidrs.some(([range, bits]) => address.kind() === range.kind() && address.match(range, bits));
  }

  get size(): number {
    return this.cidrs.length;
  }
}

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");
const NAT64_WELL_KNOWN = ipaddr.parseCIDR("64:ff9b::/96");
const NAT64_LOCAL_USE = ipaddr.parseCIDR("64:ff9b:1::/48");
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96");

/**
 * IPv4 hidden in IPv6 that a network would route to that IPv4 address: mapped and translated
 * (`::ffff:a.b.c.d`, `::ffff:0:a.b.c.d`), the NAT64 well-known prefix and 6to4. It is judged as IPv4.
 */
function embeddedIPv4(v6: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const bytes = v6.toByteArray();
  if (v6.isIPv4MappedAddress() || v6.range() === "rfc6145" || v6.match(NAT64_WELL_KNOWN)) return new ipaddr.IPv4(bytes.slice(12, 16));
  if (v6.range() === "6to4") return new ipaddr.IPv4(bytes.slice(2, 6));
  return undefined;
}

/**
 * Why an IPv6 address (without IPv4 inside) is refused, or undefined when it is public. Only global
 * unicast 2000::/3 is reachable, and within it only what ipaddr.js calls plain `unicast`: Teredo
 * (whose client IPv4 is obfuscated), documentation, benchmarking, ORCHID and AMT ranges are refused.
 */
function refusedV6Range(v6: ipaddr.IPv6): string | undefined {
  const range = v6.range();
  if (!v6.match(GLOBAL_UNICAST_V6)) {
    if (range !== "unicast" && range !== "ipv4Mapped" && range !== "rfc6052") return range;
    if (v6.match(NAT64_LOCAL_USE)) return "nat64LocalUse";
    // ::/96 (IPv4-compatible, deprecated): `[::127.0.0.1]` is written `[::7f00:1]` by the URL parser.
    if (v6.match(IPV4_COMPATIBLE)) return "ipv4Compatible";
    return "notGlobalUnicast";
  }
  return PUBLIC_RANGES.has(range) ? undefined : range;
}

/** Whether an outbound connection to `ip` is allowed. */
export function judgeAddress(ip: string, allowList: AddressAllowList): AddressVerdict {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(ip);
  } catch {
    return { allowed: false, range: "invalid" };
  }
  if (allowList.includes(parsed)) return { allowed: true };
  const effective = parsed.kind() === "ipv6" ? (embeddedIPv4(parsed as ipaddr.IPv6) ?? parsed) : parsed;
  if (effective !== parsed && allowList.includes(effective)) return { allowed: true };
  if (METADATA_ADDRESSES.has(effective.toString())) return { allowed: false, range: "cloudMetadata" };
  if (effective.kind() === "ipv6") {
    const refused = refusedV6Range(effective as ipaddr.IPv6);
    return refused === undefined ? { allowed: true } : { allowed: false, range: refused };
  }
  const range = effective.range();
  return PUBLIC_RANGES.has(range) ? { allowed: true } : { allowed: false, range };
}

/** Exactly this machine's loopback address (127.0.0.1 or ::1, as written or IPv4-mapped): what mock mode may reach. */
export function isLocalLoopback(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  const parsed = ipaddr.process(ip);
  return parsed.toString() === "127.0.0.1" || parsed.toString() === "::1";
}

export function isIpLiteral(hostname: string): boolean {
  return ipaddr.isValid(stripBrackets(hostname));
}

export function stripBrackets(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}

/**
 * Parses and judges a URL's shape (scheme, userinfo, host form). WHATWG parsing already turns
 * decimal, octal and hex IPv4 forms into dotted quads, so those are judged as the address they mean.
 * @throws GatewayError ssrf_blocked | invalid_request
 */
export function checkUrlShape(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GatewayError("invalid_request", `"${raw.slice(0, 200)}" is not an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw ssrfBlocked(`only http and https URLs may be fetched, not ${url.protocol}`, "scheme");
  }
  if (url.username !== "" || url.password !== "") throw ssrfBlocked("URLs with credentials (user:password@) are refused", "userinfo");
  if (url.hostname === "") throw ssrfBlocked("the URL has no host", "host");
  if (METADATA_HOSTNAMES.has(url.hostname.toLowerCase().replace(/\.$/, ""))) throw ssrfBlocked(`${url.hostname} is a cloud metadata service`, "cloudMetadata");
  return url;
}

export function ssrfBlocked(message: string, reason: string): GatewayError {
  return new GatewayError("ssrf_blocked", message, { details: { reason } });
}
