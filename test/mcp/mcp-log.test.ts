import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { connectWithAgentKey } from "../helpers/mcp.js";

/** The one log line of an MCP request says what was called and how it ended, never the token. */
describe("MCP request log lines", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
    await storeBuiltinCredentials(t);
  });
  afterAll(() => t.close());

  it("name the door, the JSON-RPC method, the tool, the action and the decision", async () => {
    const { agent, privateKeyPem } = await newAgent(t, { role: "researcher" });
    const { client, provider } = await connectWithAgentKey(t.url, { agentId: agent.id, privateKeyPem, scope: "serpapi:search gmail_send:send" });
    await client.listTools();
    await client.callTool({ name: "serpapi__search", arguments: { q: "logged" } });
    await client.callTool({ name: "gmail_send__send", arguments: { to: ["a@example.org"], subject: "s", text: "t" } });
    await client.close();
    const lines = t.logs
      .flatMap((chunk) => chunk.split("\n"))
      .filter((l) => l.includes('"route":"/mcp"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.rpc === "tools/list")).toMatchObject({ door: "mcp", agentId: agent.id, status: 200 });
    expect(lines.find((l) => l.rpc === "tools/call" && l.tool === "serpapi")).toMatchObject({ action: "search", decision: "allow", cache: "miss" });
    expect(lines.find((l) => l.rpc === "tools/call" && l.tool === "gmail_send")).toMatchObject({
      action: "send",
      decision: "refused",
      errorCode: "scope_denied",
    });
    const token = provider.tokens()!.access_token;
    expect(t.logs.join("")).not.toContain(token);
  });
});
