import { createPrivateKey } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { PrivateKeyJwtProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

/** Every URL an MCP client fetched (method and path), to check what its OAuth discovery did. */
export class FetchLog {
  readonly entries: { method: string; path: string; status: number }[] = [];
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    this.entries.push({ method: init?.method ?? (input instanceof Request ? input.method : "GET"), path: url.pathname, status: response.status });
    return response;
  };
  paths(): string[] {
    return this.entries.map((e) => `${e.method} ${e.path} ${e.status}`);
  }
}

/**
 * The official SDK client signed in the way MCP clients expect: it meets the 401, discovers the
 * OAuth metadata and gets its token with private_key_jwt (the agent's own key) at /oauth/token.
 */
export async function connectWithAgentKey(gatewayUrl: string, agent: { agentId: string; privateKeyPem: string; scope: string }, log = new FetchLog()) {
  const provider = new PrivateKeyJwtProvider({
    clientId: agent.agentId,
    privateKey: createPrivateKey(agent.privateKeyPem).export({ format: "jwk" }),
    algorithm: "EdDSA",
    scope: agent.scope,
    expectedIssuer: gatewayUrl,
  });
  const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp`), { authProvider: provider, fetch: log.fetch });
  const client = new Client({ name: "e2e-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport, provider, log };
}

/** The SDK client with a fixed bearer token and no way to get another. */
export async function connectWithToken(url: string, token: string) {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: "e2e-static", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** The access token a signed-in client holds. */
export function accessTokenOf(provider: PrivateKeyJwtProvider): string {
  const tokens = provider.tokens();
  if (tokens === undefined) throw new Error("the client holds no token yet");
  return tokens.access_token;
}
