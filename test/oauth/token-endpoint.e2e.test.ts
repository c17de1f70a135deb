import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { AgentClient } from "../../src/client/index.js";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async function tokenRequest(url: string, form: Record<string, string>, contentType = "application/x-www-form-urlencoded") {
  return http(`${url}/oauth/token`, { method: "POST", headers: { "content-type": contentType }, rawBody: new URLSearchParams(form).toString() });
}

describe("OAuth 2.1 for agents: metadata and the token endpoint", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(() => t.close());

  it("publishes protected resource metadata (RFC 9728) naming /mcp and this gateway as its authorization server", async () => {
    for (const path of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]) {
      const r = await http(`${t.url}${path}`);
      expect(r.status).toBe(200);
      expect(r.json.resource).toBe(`${t.url}/mcp`);
      expect(r.json.authorization_servers).toEqual([t.url]);
      expect(r.json.bearer_methods_supported).toEqual(["header"]);
      expect(r.json.scopes_supported).toContain("serpapi:search");
      expect(r.json.scopes_supported).toContain("gmail_send:send");
    }
  });

  it("publishes authorization server metadata (RFC 8414): client_credentials with private_key_jwt only", async () => {
    const r = await http(`${t.url}/.well-known/oauth-authorization-server`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      issuer: t.url,
      token_endpoint: `${t.url}/oauth/token`,
      jwks_uri: `${t.url}/.well-known/jwks.json`,
      grant_types_supported: ["client_credentials"],
      token_endpoint_auth_methods_supported: ["private_key_jwt"],
      token_endpoint_auth_signing_alg_values_supported: ["EdDSA", "ES256", "RS256"],
    });
    expect(r.json.scopes_supported).toContain("http_fetch:get");
    const jwks = await http(r.json.jwks_uri);
    expect(jwks.json.keys.length).toBeGreaterThan(0);
    const authorize = await http(`${t.url}/oauth/authorize?response_type=code`);
    expect(authorize.status).toBe(400);
    expect(authorize.json.error).toBe("unsupported_response_type");
  });

  it("issues the gateway token for a private_key_jwt assertion whose aud is the issuer, the token endpoint or GATEWAY_ISSUER", async () => {
    const { agent, client } = await newAgent(t, { role: "researcher" });
    for (const audience of [t.url, `${t.url}/oauth/token`, "urn:4runr:gateway"]) {
      const r = await tokenRequest(t.url, {
        grant_type: "client_credentials",
        client_id: agent.id,
        client_assertion_type: JWT_BEARER,
        client_assertion: await client.signAssertion({ audience }),
        scope: "serpapi:search http_fetch:*",
      });
      expect(r.status, r.text).toBe(200);
      expect(r.headers.get("cache-control")).toBe("no-store");
      expect(r.json.token_type).toBe("Bearer");
      expect(r.json.scope).toBe("http_fetch:* serpapi:search");
      expect(r.json.expires_in).toBeGreaterThan(800);
      expect(r.json.expires_in).toBeLessThanOrEqual(900);
      const self = await http(`${t.url}/api/tokens/self`, { headers: { authorization: `Bearer ${r.json.access_token}` } });
      expect(self.status).toBe(200);
      expect(self.json.agentId).toBe(agent.id);
      expect(self.json.scopes).toEqual(["http_fetch:*", "serpapi:search"]);
    }
  });

  it("takes the client id from the assertion when client_id is absent, and refuses a client_id that does not match it", async () => {
    const { agent, client } = await newAgent(t);
    const ok = await tokenRequest(t.url, {
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: await client.signAssertion({ audience: t.url }),
      scope: "serpapi:search",
      resource: `${t.url}/mcp`,
    });
    expect(ok.status, ok.text).toBe(200);
    const other = await newAgent(t);
    const mismatch = await tokenRequest(t.url, {
      grant_type: "client_credentials",
      client_id: other.agent.id,
      client_assertion_type: JWT_BEARER,
      client_assertion: await client.signAssertion({ audience: t.url }),
      scope: "serpapi:search",
    });
    expect(mismatch.status).toBe(401);
    expect(mismatch.json.error).toBe("invalid_client");
    expect(agent.id).not.toBe(other.agent.id);
  });

  it("answers a replayed or expired assertion with invalid_grant, and a bad signature, unknown agent or wrong audience with invalid_client", async () => {
    const { agent, client, privateKeyPem } = await newAgent(t);
    const form = async (overrides: Record<string, string> = {}, assertion?: string) => ({
      grant_type: "client_credentials",
      client_id: agent.id,
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion ?? (await client.signAssertion({ audience: t.url })),
      scope: "serpapi:search",
      ...overrides,
    });
    const once = await form();
    expect((await tokenRequest(t.url, once)).status).toBe(200);
    const replay = await tokenRequest(t.url, once);
    expect(replay.status).toBe(400);
    expect(replay.json).toMatchObject({ error: "invalid_grant" });
    expect(replay.json.error_description).toMatch(/already used/);

    const pastClient = new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: privateKeyPem, scopes: [], now: () => Date.now() - 600_000 });
    const expired = await tokenRequest(t.url, await form({}, await pastClient.signAssertion({ audience: t.url })));
    expect(expired.status).toBe(400);
    expect(expired.json.error).toBe("invalid_grant");

    const stranger = new AgentClient({ baseUrl: t.url, agentId: agent.id, privateKey: generateAgentKeyPair("EdDSA").privateKeyPem, scopes: [] });
    const forged = await tokenRequest(t.url, await form({}, await stranger.signAssertion({ audience: t.url })));
    expect(forged.status).toBe(401);
    expect(forged.json.error).toBe("invalid_client");

    const unknown = await tokenRequest(
      t.url,
      await form(
        { client_id: "agt_nobody" },
        await new AgentClient({ baseUrl: t.url, agentId: "agt_nobody", privateKey: generateAgentKeyPair("EdDSA").privateKeyPem, scopes: [] }).signAssertion({
          audience: t.url,
        }),
      ),
    );
    expect(unknown.status).toBe(401);
    expect(unknown.json.error).toBe("invalid_client");

    const wrongAudience = await tokenRequest(t.url, await form({}, await client.signAssertion({ audience: "https://elsewhere.example/oauth/token" })));
    expect(wrongAudience.status).toBe(401);
    expect(wrongAudience.json.error).toBe("invalid_client");
  });

  it("refuses malformed requests in the RFC 6749 shape without consuming the assertion", async () => {
    const { agent, client } = await newAgent(t);
    const assertion = await client.signAssertion({ audience: t.url });
    const base = {
      grant_type: "client_credentials",
      client_id: agent.id,
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
      scope: "serpapi:search",
    };
    const cases: [Record<string, string>, number, string][] = [
      [{ ...base, grant_type: "password" }, 400, "unsupported_grant_type"],
      [{ ...base, grant_type: "" }, 400, "invalid_request"],
      [{ ...base, scope: "" }, 400, "invalid_scope"],
      [{ ...base, scope: "serpapi search" }, 400, "invalid_scope"],
      [{ ...base, scope: "SERPAPI:SEARCH" }, 400, "invalid_scope"],
      [{ ...base, client_assertion_type: "urn:other" }, 401, "invalid_client"],
      [{ ...base, client_assertion: "" }, 401, "invalid_client"],
      [{ ...base, resource: "https://other.example/mcp" }, 400, "invalid_target"],
    ];
    for (const [f, status, error] of cases) {
      const r = await tokenRequest(t.url, f);
      expect(r.status, JSON.stringify(f)).toBe(status);
      expect(r.json.error, JSON.stringify(f)).toBe(error);
      expect(typeof r.json.error_description).toBe("string");
    }
    const repeated = await http(`${t.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      rawBody: `${new URLSearchParams(base).toString()}&scope=openai:chat`,
    });
    expect(repeated.status).toBe(400);
    expect(repeated.json.error).toBe("invalid_request");
    const json = await http(`${t.url}/oauth/token`, { body: base });
    expect(json.status).toBe(400);
    expect(json.json.error).toBe("invalid_request");
    // None of the refusals above used the assertion up.
    expect((await tokenRequest(t.url, base)).status).toBe(200);
  });

  it("a token from /oauth/token is revoked like any other", async () => {
    const { agent, client } = await newAgent(t);
    const r = await tokenRequest(t.url, {
      grant_type: "client_credentials",
      client_id: agent.id,
      client_assertion_type: JWT_BEARER,
      client_assertion: await client.signAssertion({ audience: t.url }),
      scope: "serpapi:search",
    });
    const auth = { authorization: `Bearer ${r.json.access_token}` };
    expect((await http(`${t.url}/api/tokens/self`, { headers: auth })).status).toBe(200);
    await t.admin.raw("POST", `/api/agents/${agent.id}/revoke-tokens`);
    const after = await http(`${t.url}/api/tokens/self`, { headers: auth });
    expect(after.status).toBe(401);
    expect(after.json.error.code).toBe("token_revoked");
  });
});
