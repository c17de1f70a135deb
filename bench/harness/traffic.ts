import { randomBytes, randomUUID } from "node:crypto";
import { AdminClient, AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import type { ProbeKind } from "./probes.js";

/** One request the generator sends, with what a correct gateway must answer. */
export interface PlannedRequest {
  tool: string;
  action: string;
  params: Record<string, unknown>;
  token: string;
  headers: Record<string, string>;
  /** Probes must be refused; everything else must succeed. */
  expect: "allow" | "deny";
  kind: string;
  duplicate: boolean;
}

export type { ProbeKind } from "./probes.js";

export interface Fleet {
  agents: AgentClient[];
  probes: {
    narrow: AgentClient;
    quota: AgentClient;
    offHours: AgentClient;
    rateLimited: AgentClient;
    revokedToken: string;
    tamperedToken: string;
    forgedToken: string;
    expiredToken: { token: string; usableAfterMs: number };
  };
  /** Credential values stored for the run, to prove none ever comes back. */
  secrets: string[];
  mockUrl: string;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** Registers credentials, policies and agents for the traffic mix (names unique per run). */
/**
 * `agentRatePerSecond` is the per-agent rate limit the bench policy carries (so the counters are on
 * the path like in production); saturation benchmarks raise it so they measure the gateway, not a limit.
 */
export async function setUpFleet(o: {
  gatewayUrl: string;
  adminKey: string;
  mockUrl: string;
  agents: number;
  runId: string;
  clockSkewSeconds?: number;
  agentRatePerSecond?: number;
  agentQuotaPerDay?: number;
}): Promise<Fleet> {
  const admin = new AdminClient({ baseUrl: o.gatewayUrl, adminKey: o.adminKey });
  const secrets: string[] = [];
  for (const tool of ["serpapi", "openai", "gmail_send"]) {
    const secret = `bench-${tool}-${randomBytes(12).toString("hex")}`;
    secrets.push(secret);
    await admin.putCredential(tool, secret);
  }
  const role = (r: string) => `${r}-${o.runId}`.toLowerCase().slice(0, 60);
  const policy = (name: string, subjectRole: string, rules: unknown[]) =>
    admin.raw("POST", "/api/policies", { name: `${name}-${o.runId}`, subject: { role: subjectRole }, rules });
  const tools = ["serpapi:search", "http_fetch:get", "openai:chat", "gmail_send:send"];
  // `agentQuotaPerDay` puts a quota counter on the path too, as a production policy would.
  const quotaRule = o.agentQuotaPerDay === undefined ? [] : [{ effect: "allow", scopes: ["*"], quota: { limit: o.agentQuotaPerDay, per: "day" } }];
  await policy("bench", role("bench"), [
    { effect: "allow", scopes: tools },
    { effect: "allow", scopes: ["*"], rateLimit: { perSecond: o.agentRatePerSecond ?? 2000, burst: 2 * (o.agentRatePerSecond ?? 2000) } },
    ...quotaRule,
  ]);
  await policy("bench-quota", role("bench-quota"), [
    { effect: "allow", scopes: ["serpapi:search"] },
    { effect: "allow", scopes: ["serpapi:search"], quota: { limit: 1, per: "day" } },
  ]);
  const hour = (new Date().getUTCHours() + 12) % 24;
  const hh = String(hour).padStart(2, "0");
  await policy("bench-offhours", role("bench-offhours"), [
    { effect: "allow", scopes: ["serpapi:search"] },
    { effect: "allow", scopes: ["serpapi:search"], schedule: { hours: `${hh}:00-${hh}:30`, timeZone: "UTC" } },
  ]);
  await policy("bench-ratelimit", role("bench-ratelimit"), [
    { effect: "allow", scopes: ["serpapi:search"] },
    { effect: "allow", scopes: ["serpapi:search"], rateLimit: { perSecond: 0.00001, burst: 1 } },
  ]);

  const agent = async (name: string, agentRole: string, scopes: string[]) => {
    const pair = generateAgentKeyPair("EdDSA");
    const created = await admin.createAgent({ name: `${name}-${o.runId}-${randomBytes(3).toString("hex")}`, role: agentRole, publicKey: pair.publicKeyPem });
    const client = new AgentClient({ baseUrl: o.gatewayUrl, agentId: created.id, privateKey: pair.privateKeyPem, scopes, ttlSeconds: 3600 });
    await client.token();
    return client;
  };
  const agents = await Promise.all(Array.from({ length: o.agents }, (_, i) => agent(`bench-${i}`, role("bench"), tools)));
  const narrow = await agent("probe-narrow", role("bench"), ["serpapi:search"]);
  const quota = await agent("probe-quota", role("bench-quota"), ["serpapi:search"]);
  const offHours = await agent("probe-offhours", role("bench-offhours"), ["serpapi:search"]);
  const rateLimited = await agent("probe-ratelimit", role("bench-ratelimit"), ["serpapi:search"]);
  // Use up the one call each limited probe agent has (the bucket refills once a day), so every probe after this must be refused.
  await quota.call("serpapi", "search", { q: "use up the quota" });
  await rateLimited.call("serpapi", "search", { q: "use up the burst" });

  const victim = await agent("probe-revoked", role("bench"), tools);
  const revoked = await victim.issueToken();
  await admin.revokeToken(revoked.tokenId);
  const valid = await agents[0]!.token();
  const [h, p, s] = valid.split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
  const tamperedToken = `${h}.${b64({ ...claims, scp: ["*:*"] })}.${s}`;
  const forgedToken = `${b64({ alg: "none", typ: "at+jwt" })}.${b64({ ...claims, jti: randomUUID() })}.`;
  const shortLived = await victim.issueToken({ ttlSeconds: 10 });
  return {
    agents,
    probes: {
      narrow,
      quota,
      offHours,
      rateLimited,
      revokedToken: revoked.token,
      tamperedToken,
      forgedToken,
      expiredToken: { token: shortLived.token, usableAfterMs: Date.parse(shortLived.expiresAt) + ((o.clockSkewSeconds ?? 30) + 1) * 1000 },
    },
    secrets,
    mockUrl: o.mockUrl,
  };
}

/** Deterministic pseudo-random numbers, so two runs of a scenario send the same mix. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** The production mix: 60 % search, 30 % fetch + chat, 10 % mail, 3 % probes, 15 % duplicate queries. */
export function mixedTraffic(fleet: Fleet, random: () => number, options: { probes: boolean; bypassCache?: boolean } = { probes: true }) {
  let counter = 0;
  return async (): Promise<PlannedRequest> => {
    counter++;
    const agent = fleet.agents[counter % fleet.agents.length]!;
    if (options.probes && random() < 0.03) return probe(fleet, random);
    const token = await agent.token();
    const r = random();
    const duplicate = random() < 0.15;
    const base = {
      token,
      headers: (options.bypassCache ? { "cache-control": "no-cache" } : {}) as Record<string, string>,
      expect: "allow" as const,
      duplicate,
    };
    if (r < 0.6)
      return {
        ...base,
        tool: "serpapi",
        action: "search",
        kind: "serpapi",
        params: { q: duplicate ? `popular query ${Math.floor(random() * 20)}` : `query ${counter} ${random().toString(36).slice(2, 8)}` },
      };
    if (r < 0.75)
      return {
        ...base,
        tool: "http_fetch",
        action: "get",
        kind: "http_fetch",
        params: { url: `${fleet.mockUrl}/pages/${duplicate ? `popular-${Math.floor(random() * 10)}` : `p-${counter}`}` },
      };
    if (r < 0.9)
      return {
        ...base,
        tool: "openai",
        action: "chat",
        kind: "openai",
        duplicate: false,
        params: { model: "gpt-4o-mini", messages: [{ role: "user", content: `Summarise result ${counter}` }], max_tokens: 64 },
      };
    return {
      ...base,
      tool: "gmail_send",
      action: "send",
      kind: "gmail_send",
      duplicate: false,
      headers: { ...base.headers, "idempotency-key": randomUUID() },
      params: { to: ["ops@example.com"], subject: `Report ${counter}`, text: "Findings attached." },
    };
  };
}

/** Repeated queries from a small pool (the cache scenario). */
export function cacheTraffic(fleet: Fleet, random: () => number) {
  let counter = 0;
  return async (): Promise<PlannedRequest> => {
    const agent = fleet.agents[counter++ % fleet.agents.length]!;
    const token = await agent.token();
    if (random() < 0.7)
      return {
        tool: "serpapi",
        action: "search",
        params: { q: `repeated query ${Math.floor(random() * 30)}` },
        token,
        headers: {},
        expect: "allow",
        kind: "serpapi",
        duplicate: true,
      };
    return {
      tool: "http_fetch",
      action: "get",
      params: { url: `${fleet.mockUrl}/pages/repeated-${Math.floor(random() * 20)}` },
      token,
      headers: {},
      expect: "allow",
      kind: "http_fetch",
      duplicate: true,
    };
  };
}

async function probe(fleet: Fleet, random: () => number): Promise<PlannedRequest> {
  const kinds: ProbeKind[] = ["out_of_scope", "tampered_token", "revoked_token", "forged_token", "over_quota", "off_hours", "rate_limited"];
  if (Date.now() > fleet.probes.expiredToken.usableAfterMs) kinds.push("expired_token");
  const kind = kinds[Math.floor(random() * kinds.length)]!;
  const search = {
    tool: "serpapi",
    action: "search",
    params: { q: `probe ${kind}` },
    headers: {},
    expect: "deny" as const,
    kind: `probe:${kind}`,
    duplicate: false,
  };
  switch (kind) {
    case "out_of_scope":
      return {
        ...search,
        tool: "gmail_send",
        action: "send",
        params: { to: ["x@example.com"], subject: "exfiltrate", text: "x" },
        token: await fleet.probes.narrow.token(),
      };
    case "tampered_token":
      return { ...search, token: fleet.probes.tamperedToken };
    case "revoked_token":
      return { ...search, token: fleet.probes.revokedToken };
    case "forged_token":
      return { ...search, token: fleet.probes.forgedToken };
    case "expired_token":
      return { ...search, token: fleet.probes.expiredToken.token };
    case "over_quota":
      return { ...search, token: await fleet.probes.quota.token() };
    case "off_hours":
      return { ...search, token: await fleet.probes.offHours.token() };
    case "rate_limited":
      return { ...search, token: await fleet.probes.rateLimited.token() };
  }
}
