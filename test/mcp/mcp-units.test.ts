import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/index.js";
import { mcpToolName } from "../../src/mcp/tool-names.js";
import { actionNameFor, capped, loadClientSdk, mcpFailure, parseMcpServer } from "../../src/mcp/upstream.js";

describe("MCP tool names", () => {
  it("are <tool>__<action>, valid OpenAI function names, unique and stable when shortened", () => {
    expect(mcpToolName("serpapi", "search")).toBe("serpapi__search");
    const long = mcpToolName("a".repeat(64), "b".repeat(64));
    expect(long).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(long).toHaveLength(64);
    expect(mcpToolName("a".repeat(64), "b".repeat(64))).toBe(long);
    expect(mcpToolName("a".repeat(64), `${"b".repeat(63)}c`)).not.toBe(long);
  });

  it("upstream tool names become scope-safe actions, with a hash when they had to change or collide", () => {
    expect(actionNameFor("list_notes", new Set())).toBe("list_notes");
    expect(actionNameFor("Get.Weather", new Set())).toMatch(/^get_weather_[0-9a-f]{6}$/);
    expect(actionNameFor("list_notes", new Set(["list_notes"]))).toMatch(/^list_notes_[0-9a-f]{6}$/);
    expect(actionNameFor("__private", new Set())).toMatch(/^private_[0-9a-f]{6}$/);
    expect(actionNameFor("🙂", new Set())).toMatch(/^tool_[0-9a-f]{6}$/);
    for (const name of ["x".repeat(128), "a/b/c", "UPPER", "dots.and-dashes"]) expect(actionNameFor(name, new Set())).toMatch(/^[a-z0-9][a-z0-9_-]{0,63}$/);
  });
});

describe("upstream MCP server definitions and failures", () => {
  it("names the bad field of a definition", () => {
    expect(() => parseMcpServer({ name: "crm", url: "ftp://x" })).toThrow(/server\.url/);
    expect(() => parseMcpServer({ name: "crm", url: "https://user:pw@x.example/mcp" })).toThrow(/server\.url/);
    expect(() => parseMcpServer({ name: "crm", url: "https://x.example/mcp", auth: { in: "query", name: "k" } })).toThrow(/invalid MCP server/);
    expect(parseMcpServer({ name: "crm", url: "https://x.example/mcp", auth: { in: "header", name: "Authorization", prefix: "Bearer " } }).name).toBe("crm");
  });

  it("maps what the MCP client raises to the codes the breaker and retries read", async () => {
    // What the gateway does before its first upstream connection: errors of these classes come only from the SDK it loads.
    await loadClientSdk();
    const code = (err: unknown) => {
      const e = mcpFailure("crm", err) as GatewayError;
      return [e.code, e.details?.reason, e.details?.retryable];
    };
    expect(code(new StreamableHTTPError(500, "boom"))).toEqual(["upstream_error", "upstream_5xx", true]);
    expect(code(new StreamableHTTPError(401, "no"))).toEqual(["upstream_error", "credential_rejected", false]);
    expect(code(new StreamableHTTPError(404, "session"))).toEqual(["upstream_error", "mcp_transport", true]);
    expect(code(new McpError(-32602, "bad params"))[0]).toBe("upstream_client_error");
    expect(code(new McpError(-32603, "internal"))).toEqual(["upstream_error", "mcp_error", false]);
    expect(code(Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } }))).toEqual(["upstream_error", "connection", true]);
    const blocked = new GatewayError("ssrf_blocked", "no");
    expect(mcpFailure("crm", blocked)).toBe(blocked);
    const aborted = new AbortController();
    aborted.abort();
    const abortError = new Error("aborted");
    expect(mcpFailure("crm", abortError, aborted.signal)).toBe(abortError);
  });

  it("cuts an upstream response off after the byte cap", async () => {
    const small = capped(new Response("x".repeat(100)), 1000, "crm");
    expect(await small.text()).toHaveLength(100);
    const big = capped(new Response("x".repeat(5000)), 1000, "crm");
    await expect(big.text()).rejects.toThrow(/more than 1000 bytes/);
  });
});
