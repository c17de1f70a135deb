import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { build } from "vite";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { AgentClient, GatewayClientError } from "../../src/client/index.js";
import { startGatewayProcess, type GatewayProcess } from "../helpers/process.js";
import { ROOT } from "../helpers/promtool.js";

/**
 * The console driven in a real browser (Debian's chromium through playwright-core) against a real
 * gateway process. Every step waits for what the page shows, never for time.
 */

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.join(ROOT, "test-artifacts", "console");
const README_IMAGES = path.join(ROOT, "docs", "images");
const haveBrowser = fs.existsSync(CHROMIUM);
if (!haveBrowser && !process.env.CI)
  process.stderr.write(`\n!!! ${CHROMIUM} is missing: SKIPPING the console's browser tests (required in CI; scripts/ensure-tools.sh installs it)\n\n`);

const ADMIN_KEY = `admin-${"k".repeat(24)}-${process.pid}`;

describe.skipIf(!haveBrowser && !process.env.CI)("the operator console in a real browser", () => {
  let gateway: GatewayProcess;
  let dataDir: string;
  let profileDir: string;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];
  const foreignRequests: string[] = [];
  const refusedRequests = new Set<string>();
  const state: { agentId?: string; agentKeyPem?: string; agentName?: string; waitingApprovalId?: string; decidedElsewhereId?: string } = {};

  const shot = async (name: string, options: { readme?: boolean } = {}) => {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file });
    // The README's screenshots are refreshed from this run on request (they are committed files).
    if (options.readme && process.env.UPDATE_README_SCREENSHOTS === "1") fs.copyFileSync(file, path.join(README_IMAGES, `console-${name}.png`));
  };
  const go = async (hash: string, heading: string | RegExp) => {
    await page.goto(`${gateway.url}/console/#/${hash}`);
    await page.getByRole("heading", { level: 1, name: heading }).waitFor();
  };
  const signIn = async (key: string) => {
    await page.getByLabel("Operator key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
  };
  const confirmDialog = async (label: string) => {
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    await dialog.getByRole("button", { name: label, exact: true }).click();
    await dialog.waitFor({ state: "detached" });
  };
  /** Upstream attempts the gateway made for a tool (one per request it sent), from its own /metrics. */
  const upstreamAttempts = async (tool: string) => {
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    return Number(new RegExp(`^gateway_upstream_duration_ms_count\\{tool="${tool}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
  };
  /** As the admin key, outside the browser. */
  const asAdmin = async (method: string, url: string, body?: unknown) => {
    const r = await fetch(`${gateway.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, json: (await r.json()) as any };
  };
  /** The agent asks for a mail through the gateway's HTTP API; mail outside example.com is held (202). */
  const heldMail = async (to: string, subject: string, text: string) => {
    const token = await agentClient(["gmail_send:send"]).token();
    const r = await fetch(`${gateway.url}/api/proxy`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ tool: "gmail_send", action: "send", params: { to: [to], subject, text } }),
    });
    const body = (await r.json()) as { approval: { id: string; status: string } };
    expect([r.status, body.approval.status, r.headers.get("location")]).toEqual([202, "pending", `/api/approvals/${body.approval.id}`]);
    return { id: body.approval.id, token, correlationId: r.headers.get("x-correlation-id")! };
  };
  const agentClient = (scopes: string[]) => new AgentClient({ baseUrl: gateway.url, agentId: state.agentId!, privateKey: state.agentKeyPem!, scopes });

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // The tests build what they serve, as `npm run build` does (CI starts from a fresh clone).
    await build({ configFile: path.join(ROOT, "console", "vite.config.ts"), logLevel: "warn" });
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-console-"));
    gateway = await startGatewayProcess({ DATA_DIR: dataDir, GATEWAY_ADMIN_KEY: ADMIN_KEY, UPSTREAM_MODE: "mock", LOG_LEVEL: "warn" }, 60_000);
    profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-chromium-"));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    context.on("request", (request) => {
      const url = request.url();
      if (!url.startsWith(`${gateway.url}/`) && !url.startsWith("data:") && !url.startsWith("blob:")) foreignRequests.push(url);
    });
    context.on("response", (response) => {
      if (response.status() >= 400) refusedRequests.add(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(error.message));
  }, 180_000);

  // Every test leaves a screenshot of where it ended (passed or failed) in the artifacts folder.
  afterEach(async (test) => {
    if (page && !page.isClosed())
      await shot(
        `end-${test.task.name
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, "-")
          .slice(0, 60)}`,
      );
  });

  afterAll(async () => {
    await context?.close();
    await gateway?.stop();
    for (const dir of [dataDir, profileDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("prints the console's address at start and serves it with a strict CSP and no inline script", async () => {
    expect(gateway.output.join("")).toContain(`console:        ${gateway.url}/console/`);
    const response = await fetch(`${gateway.url}/console/`);
    expect(response.status).toBe(200);
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(response.headers.get("x-frame-options")).toBe("DENY");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await response.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/https?:\/\//);
    // A path that tries to leave the console's folder gets the page, never the file.
    const escape = await fetch(`${gateway.url}/console/..%2f..%2fpackage.json`);
    expect(await escape.text()).not.toContain('"name": "4runr-gateway"');
  });

  it("refuses a wrong key with the gateway's message and correlation id, then signs in with the admin key", async () => {
    await page.goto(`${gateway.url}/console`);
    const keyField = page.getByLabel("Operator key");
    expect(await keyField.getAttribute("type")).toBe("password");
    await signIn("not-the-key-000000000000");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/admin_unauthorized.*correlation id [0-9a-f-]{36}/);
    await shot("signin-refused");
    await signIn(ADMIN_KEY);
    await page.getByTestId("health-status").filter({ hasText: "ok" }).waitFor();
    await page.getByTestId("ready-status").filter({ hasText: "ready" }).waitFor();
    // The key is gone from the page and from page storage; the session lives in an HttpOnly cookie.
    expect(await page.content()).not.toContain(ADMIN_KEY);
    expect(await page.evaluate("JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie")).toBe("{}{}");
    const cookie = (await context.cookies()).find((c) => c.name === "4runr_console");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  }, 60_000);

  it("creates an agent with a key pair made in the browser and downloads its key file once", async () => {
    await go("agents", "Agents");
    await page.getByRole("button", { name: "New agent" }).click();
    state.agentName = `console-agent-${process.pid}`;
    await page.getByLabel("Name", { exact: true }).fill(state.agentName);
    await page.getByLabel("Role", { exact: true }).fill("console-tester");
    await page.getByRole("button", { name: "Create agent" }).click();
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: `Download ${state.agentName}.agent.json` }).click();
    const download = await downloading;
    const file = JSON.parse(fs.readFileSync(await download.path(), "utf8")) as { agentId: string; privateKeyPem: string; gatewayUrl: string };
    expect(file.gatewayUrl).toBe(gateway.url);
    state.agentId = file.agentId;
    state.agentKeyPem = file.privateKeyPem;
    await page.getByRole("button", { name: "Done" }).click();
    await page.getByRole("link", { name: state.agentName }).waitFor();
    await page.getByLabel("Search by name, id or role").fill("console-tester");
    await page.getByRole("link", { name: state.agentName }).waitFor();
    // The key file works: the agent proves possession with the key the browser made.
    const issued = await agentClient(["serpapi:search"]).issueToken();
    expect(issued.tokenId).toBeTruthy();
    await shot("agents");
    // Revoke its tokens, suspend it, activate it again: each asks first.
    await page.getByRole("link", { name: state.agentName }).click();
    await page.getByRole("heading", { level: 1, name: `Agent ${state.agentName}` }).waitFor();
    await page.getByRole("button", { name: "Revoke tokens" }).click();
    await confirmDialog("Revoke tokens");
    await page.getByText("1 token(s) revoked.").waitFor();
    await page.getByRole("button", { name: "Suspend" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect(await page.locator(".facts .badge").textContent()).toBe("active");
    await page.getByRole("button", { name: "Suspend" }).click();
    await confirmDialog("Suspend");
    await page.locator(".facts .badge", { hasText: "suspended" }).waitFor();
    await expect(agentClient(["serpapi:search"]).issueToken()).rejects.toMatchObject({ code: "agent_suspended" });
    await page.getByRole("button", { name: "Activate" }).click();
    await confirmDialog("Activate");
    await page.locator(".facts .badge", { hasText: "active" }).waitFor();
  }, 60_000);

  it("shows a policy's error at the field, then applies the fixed policy", async () => {
    await go("policies", "Policies");
    await page.getByRole("button", { name: "New policy" }).click();
    const editor = page.getByLabel("Policy (YAML)");
    await editor.fill(
      ["name: console-testers", "subject:", "  role: console-tester", "rules:", "  - effect: maybe", "    scopes: [serpapi:search]", ""].join("\n"),
    );
    await page.getByRole("button", { name: "Create policy" }).click();
    const fieldError = page.getByTestId("policy-field-error");
    await fieldError.waitFor();
    expect(await fieldError.textContent()).toMatch(/rules\[0\]\.effect.*\(line 5\)/);
    expect(await editor.getAttribute("aria-invalid")).toBe("true");
    await shot("policy-error");
    await editor.fill(
      ["name: console-testers", "subject:", "  role: console-tester", "rules:", "  - effect: allow", "    scopes: [serpapi:search]", ""].join("\n"),
    );
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.getByRole("heading", { level: 1, name: "Policy console-testers" }).waitFor();
    // A second version, then the diff between them and a roll back.
    await page
      .getByLabel("Policy (YAML)")
      .fill(
        ["name: console-testers", "subject:", "  role: console-tester", "rules:", "  - effect: allow", "    scopes: [serpapi:search, openai:chat]", ""].join(
          "\n",
        ),
      );
    await page.getByRole("button", { name: "Save as a new version" }).click();
    await page.getByText("Version 2 ·").waitFor();
    await page.locator(".d-add", { hasText: "openai:chat" }).waitFor();
    await page.getByRole("button", { name: "Roll back to v1" }).click();
    await confirmDialog("Roll back");
    await page.getByText("Version 3 ·").waitFor();
    expect(await page.getByLabel("Policy (YAML)").inputValue()).not.toContain("openai:chat");
    // The dry run explains a decision without making the call.
    await go("policies", "Policies");
    await page.getByLabel("Agent id").fill(state.agentId!);
    await page.getByLabel("Tool", { exact: true }).fill("openai");
    await page.getByLabel("Action", { exact: true }).fill("chat");
    await page.getByRole("button", { name: "Explain" }).click();
    expect(await page.getByTestId("explain-result").textContent()).toContain("deny");
  }, 60_000);

  it("finds the agent's denied call in the audit and follows its correlation id", async () => {
    const client = agentClient(["serpapi:search", "openai:chat"]);
    await client.call("serpapi", "search", { q: "coffee" });
    const denied = await client
      .call("openai", "chat", { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .catch((e: GatewayClientError) => e);
    expect(denied).toBeInstanceOf(GatewayClientError);
    const correlationId = (denied as GatewayClientError).correlationId!;
    await go("audit", "Audit");
    await page.getByLabel("Agent id").fill(state.agentId!);
    await page.getByLabel("Decision").selectOption("deny");
    await page.getByRole("button", { name: "Apply filters" }).click();
    const link = page.getByRole("link", { name: correlationId });
    await link.waitFor();
    await link.click();
    expect(await page.getByTestId("following").textContent()).toBe(correlationId);
    await page.locator("tr[data-decision='deny']", { hasText: "openai" }).waitFor();
    expect(await page.locator("tbody tr").count()).toBe(1);
    await go("audit", "Audit");
    await page.locator("tbody tr").first().waitFor();
    await shot("audit", { readme: true });
    // CSV export of what the filters select.
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "Export CSV" }).click();
    const csv = fs.readFileSync(await (await downloading).path(), "utf8");
    expect(csv.split("\r\n")[0]).toBe("at,correlationId,operator,agentId,tool,action,decision,reason,status,latencyMs,upstreamMs,cache,attempts,paramsHash");
    expect(csv).toContain(correlationId);
    // Live: a new call shows up on the newest page without touching anything.
    const liveBox = page.getByRole("checkbox", { name: /Live/ });
    await liveBox.click();
    expect(await liveBox.isChecked()).toBe(true);
    const fresh = await client.call("serpapi", "search", { q: "live" }, { headers: { "cache-control": "no-cache" } });
    await page.getByRole("link", { name: fresh.meta.correlationId }).waitFor();
    await liveBox.click();
  }, 60_000);

  it("adds and activates a credential version, then rolls back, never showing the secret", async () => {
    const secret = `serp-rotated-${process.pid}-secret`;
    await go("credentials", "Credentials");
    await page.getByLabel("Tool", { exact: true }).fill("serpapi");
    await page.getByLabel("Secret").fill(secret);
    await page.getByLabel("Description").fill("rotated from the console");
    await page.getByRole("button", { name: "Add version" }).click();
    await page.getByText("serpapi: version 2 added and active.").waitFor();
    expect(await page.getByLabel("Secret").inputValue()).toBe("");
    expect(await page.content()).not.toContain(secret);
    await agentClient(["serpapi:search"]).call("serpapi", "search", { q: "after rotation" }, { headers: { "cache-control": "no-cache" } });
    await page.getByRole("button", { name: "Roll back v1" }).click();
    await confirmDialog("Roll back");
    await page.getByText("serpapi: v1 is active.").waitFor();
    await shot("credentials");
  }, 60_000);

  it("holds an agent's call for approval; an approver sees it masked, denies one, approves one (the call runs once) and is told of a decision made elsewhere", async () => {
    // The admin writes the policy in the console: mail outside example.com waits for a person.
    await go("policies", "Policies");
    await page.getByRole("button", { name: "New policy" }).click();
    await page
      .getByLabel("Policy (YAML)")
      .fill(
        [
          "name: console-approvals",
          "subject:",
          "  role: console-tester",
          "rules:",
          "  - effect: allow",
          "    scopes: [gmail_send:send]",
          "  - id: outside-mail",
          "    effect: allow",
          "    scopes: [gmail_send:send]",
          "    guards:",
          "      recipients.domain: {oneOf: [example.com]}",
          "    requireApproval: {ttlSeconds: 3600, approvers: [console-approvers]}",
          "",
        ].join("\n"),
      );
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.getByRole("heading", { level: 1, name: "Policy console-approvals" }).waitFor();
    const approver = await asAdmin("POST", "/api/operators", { name: "console-approver", role: "approver" });
    expect(approver.status).toBe(201);
    // The agent asks three times through the gateway's API; nothing is sent yet.
    const secret = `sk-console${process.pid}abcdefgh`;
    const sentBefore = await upstreamAttempts("gmail_send");
    const approved = await heldMail("partner@outside.test", `contract draft ${process.pid}`, "the draft is attached");
    const denied = await heldMail("someone@outside.test", `keys for you ${process.pid}`, secret);
    const elsewhere = await heldMail("press@outside.test", `press release ${process.pid}`, "embargoed until Monday");
    state.decidedElsewhereId = elsewhere.id;
    expect(await upstreamAttempts("gmail_send")).toBe(sentBefore);
    // The approver signs in and finds them in the queue, the credential-shaped text masked.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Operator key").waitFor();
    await page.goto(`${gateway.url}/console/#/approvals`);
    await signIn(approver.json.key);
    await page.getByRole("heading", { level: 1, name: "Approvals" }).waitFor();
    expect(await page.getByTestId("who").textContent()).toContain("approver");
    const panel = (subject: string) => page.locator("section.panel", { hasText: subject });
    for (const subject of ["contract draft", "keys for you", "press release"]) await panel(`${subject} ${process.pid}`).waitFor();
    const masked = panel(`keys for you ${process.pid}`);
    expect(await masked.getByLabel("the call, with secrets masked").textContent()).toContain('"text": "[REDACTED]"');
    expect(await masked.textContent()).toContain("someone@outside.test");
    expect(await masked.textContent()).toContain("recipients.domain");
    expect(await page.content()).not.toContain(secret);
    await shot("approvals-pending");
    const decide = async (subject: string, id: string, button: "Approve" | "Deny", reason: string) => {
      await panel(subject).getByRole("button", { name: button, exact: true }).click();
      const dialog = page.getByRole("dialog");
      await dialog.waitFor();
      // The dialog shows what is being decided; a reason is required.
      expect(await dialog.textContent()).toContain(subject);
      const answered = page.waitForResponse(
        (r) => r.request().method() === "POST" && new URL(r.url()).pathname === `/api/approvals/${id}/${button.toLowerCase()}`,
      );
      await dialog.getByLabel("Reason").fill(reason);
      await dialog.getByRole("button", { name: button, exact: true }).click();
      await dialog.waitFor({ state: "detached" });
      return (await answered).status();
    };
    // Deny the one with the key: nothing is sent.
    expect(await decide(`keys for you ${process.pid}`, denied.id, "Deny", "no keys by mail")).toBe(200);
    await page.getByTestId("decision-outcome").filter({ hasText: "Denied" }).waitFor();
    await masked.waitFor({ state: "detached" });
    expect(await upstreamAttempts("gmail_send")).toBe(sentBefore);
    // Approve the draft: the stored call runs, once.
    expect(await decide(`contract draft ${process.pid}`, approved.id, "Approve", "expected by legal")).toBe(200);
    const outcome = page.getByTestId("decision-outcome").filter({ hasText: "Approved and executed" });
    await outcome.waitFor();
    expect(await outcome.getAttribute("data-status")).toBe("executed");
    expect(await outcome.getByRole("link").textContent()).toBe(approved.correlationId);
    await panel(`contract draft ${process.pid}`).waitFor({ state: "detached" });
    expect(await upstreamAttempts("gmail_send")).toBe(sentBefore + 1);
    await shot("approvals-approved");
    // Decided by someone else meanwhile: the console shows the gateway's refusal with its correlation id.
    expect((await asAdmin("POST", `/api/approvals/${elsewhere.id}/deny`, { reason: "decided by the admin" })).json.status).toBe("denied");
    expect(await decide(`press release ${process.pid}`, elsewhere.id, "Approve", "too late")).toBe(409);
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/already decided.*approval_already_decided.*HTTP 409.*correlation id [0-9a-f-]{36}/);
    await panel(`press release ${process.pid}`).waitFor({ state: "detached" });
    expect(await upstreamAttempts("gmail_send")).toBe(sentBefore + 1);
    // The history shows who decided what, and what became of it (the notice of the last decision goes).
    await page.getByRole("radio", { name: "History" }).click();
    await alert.waitFor({ state: "detached" });
    const history = (subject: string) => page.locator("section.panel", { hasText: subject });
    await history(`contract draft ${process.pid}`).locator(".badge", { hasText: "executed" }).waitFor();
    expect(await history(`contract draft ${process.pid}`).textContent()).toMatch(/Decided by console-approver .*: expected by legal/);
    await history(`keys for you ${process.pid}`).locator(".badge", { hasText: "denied" }).waitFor();
    expect(await history(`press release ${process.pid}`).textContent()).toMatch(/Decided by bootstrap-admin .*: decided by the admin/);
    await shot("approvals-history");
    // Through the API: the agent reads its approval executed with the mail's result; the trail names the approver.
    const read = await fetch(`${gateway.url}/api/approvals/${approved.id}`, { headers: { authorization: `Bearer ${approved.token}` } });
    const view = (await read.json()) as {
      status: string;
      decidedBy: string;
      decisionReason: string;
      result: { id: string };
      resultMeta: { correlationId: string };
    };
    expect(view).toMatchObject({ status: "executed", decidedBy: "console-approver", decisionReason: "expected by legal", result: { id: expect.any(String) } });
    expect((await asAdmin("GET", `/api/approvals/${denied.id}`)).json).toMatchObject({
      status: "denied",
      decidedBy: "console-approver",
      decisionReason: "no keys by mail",
    });
    const trail = (await asAdmin("GET", `/api/audit?correlationId=${approved.correlationId}`)).json.records as {
      decision: string;
      door: string;
      operator: string | null;
      status: number;
    }[];
    expect(trail.map((r) => [r.decision, r.door, r.operator]).sort()).toEqual([
      ["allow", "approval", null],
      ["approval_granted", "approval", "console-approver"],
      ["pending_approval", "rest", null],
    ]);
    expect((await asAdmin("GET", "/api/audit/verify")).json).toMatchObject({ ok: true });
    // Back to the admin for the rest of the run.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Operator key").waitFor();
    await signIn(ADMIN_KEY);
    await page.getByTestId("who").filter({ hasText: "admin" }).waitFor();
  }, 90_000);

  it("shows the approvals queue and the upstream MCP servers (both exist on this gateway)", async () => {
    await go("approvals", "Approvals");
    await page.getByRole("radio", { name: "Pending" }).waitFor();
    expect(await page.getByTestId("approvals-off").count()).toBe(0);
    await go("tools", "Tools");
    await page.locator("#mcp-title").waitFor();
    await page.waitForLoadState("networkidle");
    expect(await page.getByTestId("mcp-off").filter({ hasText: "not enabled" }).count()).toBe(0);
    await page.getByText("serpapi", { exact: true }).first().waitFor();
  }, 60_000);

  it("draws live charts from the gateway's metrics on the overview", async () => {
    await go("overview", "Overview");
    const client = agentClient(["serpapi:search"]);
    // Calls keep coming until the charts hold a few samples with calls in them. Calls beyond the
    // default 50/s rate limit are refused (429): real traffic for the charts all the same.
    const samples = async () => Number(await page.locator("figure.chart").first().getAttribute("data-samples"));
    const charted = page.locator("figure.chart [role='img'][aria-label^='Calls per second: serpapi']");
    for (let i = 0; (await samples()) < 5 || (await charted.count()) === 0; i++) {
      expect(i).toBeLessThan(100_000);
      await client.call("serpapi", "search", { q: `chart ${i % 50}` }).catch((e: GatewayClientError) => {
        if (e.code !== "rate_limited") throw e;
      });
    }
    await page.locator(".u-legend").first().waitFor();
    await shot("overview", { readme: true });
  }, 90_000);

  it("is usable on a phone-sized screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await go("audit", "Audit");
    const menu = page.getByRole("button", { name: "Menu" });
    await menu.click();
    await page.getByRole("link", { name: "Agents" }).click();
    await page.getByRole("link", { name: state.agentName! }).waitFor();
    await shot("phone-agents");
    await go("audit", "Audit");
    await page.locator("tbody tr").first().waitFor();
    await shot("phone-audit");
    await go("overview", "Overview");
    await page.getByTestId("health-status").filter({ hasText: "ok" }).waitFor();
    await shot("phone-overview");
    await page.setViewportSize({ width: 1280, height: 800 });
  }, 60_000);

  it("signs out on the server", async () => {
    const before = (await context.cookies()).find((c) => c.name === "4runr_console")!;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Operator key").waitFor();
    expect((await context.cookies()).find((c) => c.name === "4runr_console")).toBeUndefined();
    await page.reload();
    await page.getByLabel("Operator key").waitFor();
    const reused = await fetch(`${gateway.url}/api/agents`, { headers: { cookie: `4runr_console=${before.value}` } });
    expect(reused.status).toBe(401);
  }, 60_000);

  it("a viewer sees everything, finds no button to change anything, and the API refuses a change", async () => {
    // An admin creates the viewer in the console; its key is shown once.
    await page.goto(`${gateway.url}/console/#/operators`);
    await signIn(ADMIN_KEY);
    await page.getByRole("heading", { level: 1, name: "Operators" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("console-viewer");
    await page.getByLabel("Role", { exact: true }).selectOption("viewer");
    await page.getByRole("button", { name: "Create operator" }).click();
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download console-viewer.operator-key.txt" }).click();
    const viewerKey = fs.readFileSync(await (await downloading).path(), "utf8");
    expect(viewerKey).toMatch(/^op_[A-Za-z0-9_-]{43}$/);
    // Handed over, never drawn: the key is nowhere in the page.
    expect(await page.content()).not.toContain(viewerKey);
    await page.getByRole("button", { name: "Done" }).click();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.goto(`${gateway.url}/console/#/agents`);
    // By keyboard alone: the key field is the first stop, Enter signs in, the skip link leads to the page.
    await page.getByLabel("Operator key").waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement.id")).toBe("operator-key");
    await page.keyboard.type(viewerKey);
    await page.keyboard.press("Enter");
    await page.getByTestId("who").waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement.textContent")).toBe("Skip to content");
    await page.keyboard.press("Enter");
    expect(await page.evaluate("document.activeElement.id")).toBe("main");
    await page.getByRole("link", { name: state.agentName! }).waitFor();
    expect(await page.getByTestId("who").textContent()).toContain("viewer");
    expect(await page.getByRole("button", { name: "New agent" }).count()).toBe(0);
    await page.getByRole("link", { name: state.agentName! }).click();
    await page.getByRole("heading", { level: 1, name: `Agent ${state.agentName}` }).waitFor();
    await page.getByRole("heading", { name: "Recent calls" }).waitFor();
    expect(await page.getByRole("button", { name: /Suspend|Activate|Revoke tokens/ }).count()).toBe(0);
    await go("policies", "Policies");
    expect(await page.getByRole("button", { name: "New policy" }).count()).toBe(0);
    await page.getByRole("link", { name: "console-testers" }).click();
    await page.getByLabel("Policy (YAML)").waitFor();
    expect(await page.getByRole("button", { name: /Save|Roll back/ }).count()).toBe(0);
    await go("credentials", "Credentials");
    await page.locator("[data-tool='serpapi']").waitFor();
    expect(await page.getByRole("button", { name: /Add version|Activate|Roll back/ }).count()).toBe(0);
    await go("operators", "Operators");
    await page.getByText("console-viewer").first().waitFor();
    // The viewer sees who is signed in, itself marked.
    await page.locator("tr", { hasText: "console-viewer" }).filter({ hasText: "you" }).waitFor();
    expect(await page.getByRole("button", { name: /Create operator|Disable|Rotate key|End session/ }).count()).toBe(0);
    await shot("viewer-operators");
    // A call waiting for approval: the viewer sees it, and no way to decide it.
    const waiting = await heldMail("viewer-test@outside.test", `waiting ${process.pid}`, "for a person");
    await go("approvals", "Approvals");
    await page.locator("section.panel", { hasText: `waiting ${process.pid}` }).waitFor();
    expect(await page.getByRole("button", { name: /^(Approve|Deny)$/ }).count()).toBe(0);
    await page.getByRole("radio", { name: "History" }).click();
    await page.locator("section.panel", { hasText: "console-approver" }).first().waitFor();
    expect(await page.getByRole("button", { name: /^(Approve|Deny)$/ }).count()).toBe(0);
    await shot("viewer-approvals");
    // The page's own session, with its CSRF token, is refused by the gateway all the same.
    const refused = await page.evaluate(async (agentId) => {
      const session = (await (await fetch("/api/console/session")).json()) as { csrfToken: string };
      const r = await fetch(`/api/agents/${agentId}/suspend`, { method: "POST", headers: { "x-csrf-token": session.csrfToken } });
      return { status: r.status, body: (await r.json()) as { error: { code: string } } };
    }, state.agentId!);
    expect([refused.status, refused.body.error.code]).toEqual([403, "operator_forbidden"]);
    // Nor may it decide an approval, session, CSRF token and all; the call still waits.
    const decision = await page.evaluate(async (id) => {
      const session = (await (await fetch("/api/console/session")).json()) as { csrfToken: string };
      const r = await fetch(`/api/approvals/${id}/approve`, {
        method: "POST",
        headers: { "x-csrf-token": session.csrfToken, "content-type": "application/json" },
        body: JSON.stringify({ reason: "viewer" }),
      });
      return { status: r.status, body: (await r.json()) as { error: { code: string; details: unknown } } };
    }, waiting.id);
    expect([decision.status, decision.body.error.code, decision.body.error.details]).toEqual([
      403,
      "operator_forbidden",
      { role: "viewer", needed: "approver" },
    ]);
    expect((await asAdmin("GET", `/api/approvals/${waiting.id}`)).json).toMatchObject({ status: "pending", decidedBy: null });
    state.waitingApprovalId = waiting.id;
  }, 60_000);

  it("logged no console error and asked nothing of any other origin during the whole run", () => {
    // Chromium logs every 4xx answer as a console error; these are the refusals this run provokes
    // (the wrong key, the policy with an error, the approval decided elsewhere, the viewer's changes) and the probes
    // for features this gateway does not have. Any other refusal, or any other error, fails.
    expect(consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of 4\d\d /.test(e))).toEqual([]);
    expect([...refusedRequests].sort()).toEqual(
      [
        "400 POST /api/policies",
        "401 POST /api/console/session",
        "403 POST /api/agents/" + state.agentId + "/suspend",
        "403 POST /api/approvals/" + state.waitingApprovalId + "/approve",
        "409 POST /api/approvals/" + state.decidedElsewhereId + "/approve",
      ].sort(),
    );
    expect(foreignRequests).toEqual([]);
  });
});
