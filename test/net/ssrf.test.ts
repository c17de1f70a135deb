import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/index.js";
import { AddressAllowList, checkUrlShape, judgeAddress } from "../../src/net/address-policy.js";
import { GuardedHttpClient, zoneResolver, type Resolver } from "../../src/net/outbound.js";
import { GatewayClientError, type AgentClient } from "../../src/client/index.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

const none = new AddressAllowList();

describe("address judge", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.5.4", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "cloudMetadata"],
    ["169.254.1.1", "linkLocal"],
    ["100.64.0.1", "carrierGradeNat"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fe80::1", "linkLocal"],
    ["fd00::1", "uniqueLocal"],
    ["fd00:ec2::254", "cloudMetadata"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:10.1.2.3", "private"],
    ["64:ff9b::a9fe:a9fe", "cloudMetadata"],
    ["2002:7f00:1::", "loopback"],
    // IPv4-compatible ::/96 (deprecated): the URL parser writes [::127.0.0.1] as [::7f00:1].
    ["::7f00:1", "ipv4Compatible"],
    ["::a00:1", "ipv4Compatible"],
    ["::808:808", "ipv4Compatible"],
    // Only global unicast 2000::/3 may be reached over IPv6; whatever lies outside is refused.
    ["100::1", "discard"],
    ["4000::1", "notGlobalUnicast"],
    ["64:ff9b:1::a00:1", "nat64LocalUse"],
    // Inside 2000::/3 but special: Teredo hides an (obfuscated) IPv4, documentation, benchmarking.
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"],
    ["2001:db8::1", "reserved"],
    ["2001:2::1", "benchmarking"],
    // Embedded IPv4 is judged as IPv4: NAT64 well-known prefix and 6to4.
    ["64:ff9b::a00:1", "private"],
    ["64:ff9b::7f00:1", "loopback"],
    ["2002:c0a8:101::1", "private"],
  ])("refuses %s (%s)", (ip, range) => {
    expect(judgeAddress(ip, none)).toEqual({ allowed: false, range });
  });

  it.each(["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "64:ff9b::808:808", "2002:808:808::1"])("allows public %s", (ip) => {
    expect(judgeAddress(ip, none)).toEqual({ allowed: true });
  });

  it("an operator allow-list opens exactly its ranges", () => {
    const allow = AddressAllowList.parse("127.0.0.1/32, 10.1.0.0/16");
    expect(judgeAddress("127.0.0.1", allow).allowed).toBe(true);
    expect(judgeAddress("::ffff:127.0.0.1", allow).allowed).toBe(true);
    expect(judgeAddress("127.0.0.2", allow).allowed).toBe(false);
    expect(judgeAddress("10.1.200.3", allow).allowed).toBe(true);
    expect(judgeAddress("10.2.0.1", allow).allowed).toBe(false);
    expect(() => AddressAllowList.parse("localhost")).toThrow(/not an IP/);
  });

  it("refuses non-http schemes and userinfo", () => {
    for (const url of [
      "file:///etc/passwd",
      "gopher://x/",
      "ftp://example.com/",
      "javascript:alert(1)",
      "http://user:pw@example.com/",
      "http://user@example.com/",
    ]) {
      expect(() => checkUrlShape(url), url).toThrow(GatewayError);
    }
  });
});

/** A resolver with names that point where attackers like them to. */
const hostileResolver: Resolver = zoneResolver(
  {
    "internal.example.com": ["10.0.0.5"],
    "metadata.attacker.test": ["169.254.169.254"],
    "loopback.attacker.test": ["127.0.0.2"],
    "mixed.attacker.test": ["93.184.215.14", "10.0.0.7"],
    "v6.attacker.test": ["::1"],
    "public.example.com": ["93.184.215.14"],
  },
  async (name) => {
    throw new Error(`no such host ${name}`);
  },
);

const BLOCKED_URLS = [
  "http://127.0.0.1/",
  "http://127.0.0.1:6379/",
  "http://localhost/",
  "http://2130706433/",
  "http://0x7f000001/",
  "http://0x7f.1/",
  "http://017700000001/",
  "http://127.1/",
  "http://0.0.0.0/",
  "http://[::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:7f00:1]/",
  "http://[::127.0.0.1]/",
  "http://[::7f00:1]:6379/",
  "http://[64:ff9b::127.0.0.1]/",
  "http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/",
  "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
  "http://[fd00:ec2::254]/",
  "http://metadata.google.internal/computeMetadata/v1/",
  "http://10.0.0.1/admin",
  "http://192.168.0.1/",
  "http://172.31.255.255/",
  "http://100.100.100.200/",
  "http://[fe80::1]/",
  "http://224.0.0.251/",
  "http://internal.example.com/",
  "http://metadata.attacker.test/",
  "http://loopback.attacker.test/",
  "http://mixed.attacker.test/",
  "http://v6.attacker.test/",
  "http://user:password@public.example.com/",
  "file:///etc/passwd",
  "gopher://127.0.0.1:6379/_INFO",
];

describe("SSRF: the http_fetch tool refuses every one of these URLs (mock and live mode)", () => {
  let mockMode: TestGateway;
  let liveMode: TestGateway;
  let mockClient: AgentClient;
  let liveClient: AgentClient;

  beforeAll(async () => {
    mockMode = await startTestGateway({ UPSTREAM_MODE: "mock" });
    liveMode = await startTestGateway({ UPSTREAM_MODE: "live" });
    ({ client: mockClient } = await newAgent(mockMode, { scopes: ["http_fetch:*"] }));
    ({ client: liveClient } = await newAgent(liveMode, { scopes: ["http_fetch:*"] }));
  });
  afterAll(async () => {
    await mockMode.close();
    await liveMode.close();
  });

  // Names in the hostile zone need the hostile resolver: they are covered by the client tests below.
  const literalUrls = BLOCKED_URLS.filter((u) => !/attacker\.test|internal\.example\.com|public\.example\.com/.test(u) || u.includes("user:password"));

  it.each(literalUrls)("%s", async (url) => {
    for (const client of [mockClient, liveClient]) {
      const err = await client.call("http_fetch", "get", { url }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, url).toBeInstanceOf(GatewayClientError);
      const e = err as GatewayClientError;
      // A non-http scheme fails the parameter schema (400); everything else is an SSRF refusal (403).
      expect([400, 403], `${url}: ${e.code} ${e.message}`).toContain(e.status);
      if (/^https?:/.test(url)) expect(e.code, url).toBe("ssrf_blocked");
    }
  });
});

describe("SSRF: the guarded client judges resolved names, every redirect, and the address it connects to", () => {
  let server: http.Server;
  let port: number;
  let client: GuardedHttpClient;
  let hits = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits++;
      if (req.url?.startsWith("/redirect")) {
        res.writeHead(302, { location: new URL(req.url, "http://x").searchParams.get("to")! });
        return res.end();
      }
      res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    // 127.0.0.1 is allowed (it is the test server); everything else private stays refused.
    client = new GuardedHttpClient({
      resolver: zoneResolver({ "ok.test": ["127.0.0.1"] }, hostileResolver),
      allowList: AddressAllowList.parse("127.0.0.1/32"),
      transport: { kind: "direct" },
    });
  });
  afterAll(async () => {
    await client.close();
    server.close();
  });

  const get = (url: string) => client.request(url, { method: "GET", maxBytes: 1000, maxRedirects: 3 });

  it.each(BLOCKED_URLS.filter((u) => /attacker\.test|internal\.example\.com/.test(u)))("refuses %s after resolving it", async (url) => {
    await expect(get(url)).rejects.toMatchObject({ code: "ssrf_blocked" });
  });

  it("allows the allow-listed test server, by IP and by a name resolving to it", async () => {
    expect((await get(`http://127.0.0.1:${port}/`)).body.toString()).toBe("ok");
    expect((await get(`http://ok.test:${port}/`)).status).toBe(200);
  });

  it("re-judges every redirect hop and refuses one that points inside", async () => {
    const before = hits;
    await expect(get(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent("http://169.254.169.254/latest/meta-data/")}`)).rejects.toMatchObject({
      code: "ssrf_blocked",
    });
    await expect(get(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent("http://metadata.attacker.test/")}`)).rejects.toMatchObject({
      code: "ssrf_blocked",
    });
    expect(hits - before).toBe(2); // only the first hops reached the server
    const followed = await get(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://ok.test:${port}/final`)}`);
    expect(followed).toMatchObject({ status: 200, redirects: 1, url: `http://ok.test:${port}/final` });
  });

  it("bounds the number of redirects", async () => {
    let url = `http://127.0.0.1:${port}/done`;
    for (let i = 0; i < 5; i++) url = `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(url)}`;
    await expect(get(url)).rejects.toMatchObject({ code: "upstream_error", details: { reason: "too_many_redirects" } });
  });

  it("the connection itself goes through the judging lookup (no rebinding window)", async () => {
    // First answer public, later answers loopback-not-allowed: the connect-time lookup must refuse.
    let calls = 0;
    const rebinding: Resolver = async () => (++calls === 1 ? ["93.184.215.14"] : ["127.0.0.2"]);
    const c = new GuardedHttpClient({ resolver: rebinding, allowList: AddressAllowList.parse("127.0.0.1/32"), transport: { kind: "direct" } });
    try {
      await expect(c.request(`http://rebind.test:${port}/`, { method: "GET", maxBytes: 100, maxRedirects: 0 })).rejects.toMatchObject({ code: "ssrf_blocked" });
      expect(calls).toBe(2);
    } finally {
      await c.close();
    }
  });
});
