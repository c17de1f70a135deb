import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { AdminClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import { http } from "../helpers/gateway.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { connectWithAgentKey } from "../helpers/mcp.js";
import { startUpstreamMcp } from "../helpers/upstream-mcp.js";

/** The gateway in front of other MCP servers: real SDK servers upstream, the SDK client downstream. */
describe("MCP: fronting upstream MCP servers", () => {
  const adminKey = `admin-${randomBytes(16).toString("hex")}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-mcp-up-"));
  const notes: string[] = [];
  let release: () => void = () => undefined;
  const never = new Promise<void>((resolve) => (release = resolve));
  let gw: GatewayProcess;
  let admin: AdminClient;
  let notesServer: Awaited<ReturnType<typeof startUpstreamMcp>>;
  let flaky: Awaited<ReturnType<typeof startUpstreamMcp>>;
  let slow: Awaited<ReturnType<typeof startUpstreamMcp>>;
  const adminCall = (method: string, p: string, body?: unknown) =>
    http(`${gw.url}${p}`, { method, headers: { authorization: `Bearer ${adminKey}` }, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    notesServer = await startUpstreamMcp({
      name: "notes",
      requireHeader: { name: "x-api-key", value: "notes-upstream-secret" },
      tools: (server) => {
        server.registerTool(
          "add_note",
          { description: "Adds a note", inputSchema: { text: z.string().min(1) }, annotations: { readOnlyHint: false, destructiveHint: false } },
          async ({ text }) => {
            notes.push(text);
            return { content: [{ type: "text", text: `added ${text}` }], structuredContent: { added: text, count: notes.length } };
          },
        );
        server.registerTool("list_notes", { description: "Lists the notes", annotations: { readOnlyHint: true } }, async () => ({
          content: [{ type: "text", text: notes.join("\n") }],
          structuredContent: { notes },
        }));
        server.registerTool("Get.Weather", { description: "A tool whose name is not a scope", inputSchema: { city: z.string() } }, async ({ city }) => ({
          content: [{ type: "text", text: `sunny in ${city}` }],
        }));
        server.registerTool("explode", { description: "Always reports an error" }, async () => ({
          isError: true,
          content: [{ type: "text", text: "the note store is read-only today" }],
        }));
      },
    });
    flaky = await startUpstreamMcp({
      name: "flaky",
      tools: (server) =>
        server.registerTool("ping", { description: "pong", annotations: { readOnlyHint: true } }, async () => ({ content: [{ type: "text", text: "pong" }] })),
    });
    slow = await startUpstreamMcp({
      name: "slow",
      tools: (server) =>
        server.registerTool("wait", { description: "Answers when the test ends" }, async () => {
          await never;
          return { content: [{ type: "text", text: "late" }] };
        }),
    });
    gw = await startGatewayProcess({
      DATA_DIR: dir,
      GATEWAY_ADMIN_KEY: adminKey,
      GATEWAY_MASTER_KEY: randomBytes(32).toString("base64"),
      UPSTREAM_MODE: "mock",
      SSRF_ALLOW: "127.0.0.1/32",
      BREAKER_MIN_CALLS: "3",
      BREAKER_COOLDOWN_MS: "600000",
      RETRY_BASE_MS: "1",
    });
    admin = new AdminClient({ baseUrl: gw.url, adminKey });
    await admin.raw("POST", "/api/policies", {
      name: "notetakers",
      subject: { role: "notetaker" },
      rules: [
        { effect: "allow", scopes: ["notes:*", "flaky:*", "slow:*"] },
        { id: "short-notes", effect: "allow", scopes: ["notes:add_note"], guards: { text: { maxLength: 20 } } },
      ],
    });
  }, 60_000);
  afterAll(async () => {
    release();
    await gw?.stop();
    await Promise.all([notesServer?.close(), flaky?.close(), slow?.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function agent(scope = "notes:* flaky:* slow:*") {
    const pair = generateAgentKeyPair("EdDSA");
    const created = await admin.createAgent({ name: `notetaker-${randomUUID().slice(0, 8)}`, role: "notetaker", publicKey: pair.publicKeyPem });
    return connectWithAgentKey(gw.url, { agentId: created.id, privateKeyPem: pair.privateKeyPem, scope });
  }

  it("registration: the credential must be in the vault first, the URL passes the SSRF guard, bad definitions are named", async () => {
    const noCredential = await adminCall("POST", "/api/mcp-servers", { name: "notes", url: notesServer.url, auth: { in: "header", name: "x-api-key" } });
    expect(noCredential.status).toBe(424);
    expect(noCredential.json.error.code).toBe("credential_missing");

    const metadata = await adminCall("POST", "/api/mcp-servers", { name: "meta", url: "http://169.254.169.254/mcp", auth: { in: "none" } });
    expect(metadata.status).toBe(403);
    expect(metadata.json.error.code).toBe("ssrf_blocked");

    const bad = await adminCall("POST", "/api/mcp-servers", { name: "Bad Name", url: notesServer.url });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/server\.name/);
    const builtin = await adminCall("POST", "/api/mcp-servers", { name: "serpapi", url: notesServer.url });
    expect(builtin.status).toBe(409);
    const unauthenticated = await http(`${gw.url}/api/mcp-servers`, { body: { name: "x", url: notesServer.url } });
    expect(unauthenticated.status).toBe(401);

    await admin.putCredential("notes", "notes-upstream-secret");
    const ok = await adminCall("POST", "/api/mcp-servers", { name: "notes", url: notesServer.url, auth: { in: "header", name: "x-api-key" }, timeoutMs: 5000 });
    expect(ok.status, ok.text).toBe(201);
    const scopes = ok.json.tools.map((t: { scope: string }) => t.scope);
    expect(scopes).toContain("notes:add_note");
    expect(scopes).toContain("notes:list_notes");
    const weather = ok.json.tools.find((t: { name: string }) => t.name === "Get.Weather");
    expect(weather.scope).toMatch(/^notes:get_weather_[0-9a-f]{6}$/);
    expect(weather.mcpName).toMatch(/^notes__get_weather_[0-9a-f]{6}$/);

    for (const name of ["flaky", "slow"]) {
      const r = await adminCall("POST", "/api/mcp-servers", { name, url: (name === "flaky" ? flaky : slow).url, auth: { in: "none" }, timeoutMs: 300 });
      expect(r.status, r.text).toBe(201);
    }
    const tools = await adminCall("GET", "/api/tools");
    const listed = tools.json.tools.filter((t: { tool: string }) => t.tool === "notes");
    expect(listed.map((t: { mcpName: string }) => t.mcpName)).toContain("notes__add_note");
    const clash = await adminCall("POST", "/api/tools", {
      name: "notes",
      baseUrl: "https://notes.example.com",
      actions: { get: { method: "GET", path: "/" } },
    });
    expect(clash.status).toBe(409);
    expect((await adminCall("GET", "/api/mcp-servers")).json.servers.map((s: { server: { name: string } }) => s.server.name).sort()).toEqual([
      "flaky",
      "notes",
      "slow",
    ]);
  });

  it("its tools are gateway tools: listed by policy, called through the road with the vault's credential, guards on their arguments", async () => {
    const { client } = await agent();
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["notes__add_note", "notes__list_notes", "flaky__ping", "slow__wait"]));
    const narrow = await agent("notes:list_notes");
    expect((await narrow.client.listTools()).tools.map((t) => t.name)).toEqual(["notes__list_notes"]);
    await narrow.client.close();

    const added = await client.callTool({ name: "notes__add_note", arguments: { text: "buy milk" } });
    expect(added.isError, JSON.stringify(added.content)).toBeFalsy();
    expect(added.structuredContent).toMatchObject({ added: "buy milk" });
    const listedNotes = await client.callTool({ name: "notes__list_notes", arguments: {} });
    expect((listedNotes.structuredContent as { notes: string[] }).notes).toContain("buy milk");
    // Only the gateway holds the upstream's key: the upstream saw it, the agent never did.
    expect(notesServer.seen.some((s) => s.headers["x-api-key"] === "notes-upstream-secret")).toBe(true);
    expect(JSON.stringify(added)).not.toContain("notes-upstream-secret");

    const long = await client.callTool({ name: "notes__add_note", arguments: { text: "a note far longer than twenty characters" } });
    expect(long.isError).toBe(true);
    expect(text(long)).toMatch(/^guard_failed: /);
    expect(notes).not.toContain("a note far longer than twenty characters");

    const missing = await client.callTool({ name: "notes__add_note", arguments: {} });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toMatch(/^invalid_request: .*params\.text is required/);

    const toolError = await client.callTool({ name: "notes__explode", arguments: {} });
    expect(toolError.isError).toBe(true);
    expect(text(toolError)).toMatch(/^upstream_client_error: .*read-only today/);

    const weatherName = names.find((n) => n.startsWith("notes__get_weather_"))!;
    const weather = await client.callTool({ name: weatherName, arguments: { city: "Oslo" } });
    expect(JSON.stringify(weather.structuredContent)).toContain("sunny in Oslo");
    await client.close();
  });

  it("POST /api/proxy calls them too", async () => {
    const pair = generateAgentKeyPair("EdDSA");
    const created = await admin.createAgent({ name: `rest-notes-${randomUUID().slice(0, 8)}`, role: "notetaker", publicKey: pair.publicKeyPem });
    const { AgentClient } = await import("../../src/client/index.js");
    const rest = new AgentClient({ baseUrl: gw.url, agentId: created.id, privateKey: pair.privateKeyPem, scopes: ["notes:*"] });
    const r = await rest.call<{ notes: string[] }>("notes", "list_notes", {});
    expect(r.data.notes).toContain("buy milk");
    expect(r.meta.tool).toBe("notes");
  });

  it("follows the upstream's listChanged, and an admin refresh, to pick up new tools", async () => {
    notesServer.addTools((server) =>
      server.registerTool("archive", { description: "Archives every note" }, async () => ({ content: [{ type: "text", text: "archived" }] })),
    );
    const deadline = Date.now() + 10_000;
    let actions: string[] = [];
    while (Date.now() < deadline) {
      actions = (await adminCall("GET", "/api/tools")).json.tools.filter((t: { tool: string }) => t.tool === "notes").map((t: { action: string }) => t.action);
      if (actions.includes("archive")) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(actions).toContain("archive");
    const refreshed = await adminCall("POST", "/api/mcp-servers/notes/refresh");
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.tools.map((t: { name: string }) => t.name)).toContain("archive");
    expect((await adminCall("POST", "/api/mcp-servers/nothing/refresh")).status).toBe(404);
  });

  it("a failing upstream trips its breaker; a slow one times out", async () => {
    const { client } = await agent();
    expect((await client.callTool({ name: "flaky__ping", arguments: {} })).isError).toBeFalsy();
    flaky.state.failing = true;
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await client.callTool({ name: "flaky__ping", arguments: {} });
      expect(r.isError).toBe(true);
      codes.push(text(r).split(":")[0]!);
    }
    expect(codes[0]).toBe("upstream_error");
    expect(codes).toContain("circuit_open");
    expect(codes.at(-1)).toBe("circuit_open");
    const health = await http(`${gw.url}/health`);
    expect(health.json.breakers.flaky).toBe("open");

    const late = await client.callTool({ name: "slow__wait", arguments: {} });
    expect(late.isError).toBe(true);
    expect(text(late)).toMatch(/^upstream_timeout: /);
    await client.close();
  });

  it("removing a server removes its tools", async () => {
    expect((await adminCall("DELETE", "/api/mcp-servers/slow")).status).toBe(204);
    expect((await adminCall("DELETE", "/api/mcp-servers/slow")).status).toBe(404);
    const tools = (await adminCall("GET", "/api/tools")).json.tools.map((t: { tool: string }) => t.tool);
    expect(tools).not.toContain("slow");
    const { client } = await agent();
    expect((await client.listTools()).tools.map((t) => t.name).some((n) => n.startsWith("slow__"))).toBe(false);
    await client.close();
  });
});

function text(result: object): string {
  return (result as { content: { type: string; text: string }[] }).content[0]!.text;
}
