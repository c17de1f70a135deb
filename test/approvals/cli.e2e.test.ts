import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { ROOT as ROOT_DIR } from "../helpers/promtool.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

const run = promisify(execFile);

describe("gateway approvals list|show|approve|deny (the CLI against a running gateway)", () => {
  let t: TestGateway;
  const cli = async (...args: string[]) => {
    try {
      const r = await run(process.execPath, ["--import", "tsx", path.join(ROOT_DIR, "src/cli/main.ts"), "--url", t.url, "--admin-key", t.adminKey, ...args], {
        cwd: ROOT_DIR,
        env: { PATH: process.env.PATH ?? "" },
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(async () => {
    t = await startTestGateway({ UPSTREAM_MODE: "mock" });
    await storeBuiltinCredentials(t);
    await t.admin.raw("POST", "/api/policies", {
      name: "mail-held",
      subject: { all: true },
      rules: [
        { effect: "allow", scopes: ["gmail_send:send"] },
        { effect: "allow", scopes: ["gmail_send:send"], requireApproval: { approvers: ["ops"] } },
      ],
    });
  });
  afterAll(async () => {
    await t.close();
  });

  // Five CLI processes (each compiles the CLI through tsx): generous on a shared machine.
  it("lists, shows, approves and denies; a second decision is an error with its code", { timeout: 90_000 }, async () => {
    const { client } = await newAgent(t, { scopes: ["gmail_send:send"] });
    const token = await client.token();
    const ask = async () =>
      (
        await http(`${t.url}/api/proxy`, {
          headers: { authorization: `Bearer ${token}` },
          body: { tool: "gmail_send", action: "send", params: { to: "x@outside.test", subject: "s", text: "t" } },
        })
      ).json.approval.id as string;
    const [first, second] = [await ask(), await ask()];

    const list = await cli("approvals", "list", "--status", "pending");
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(first);
    expect(list.stdout).toContain("gmail_send:send");
    const show = await cli("--json", "approvals", "show", first);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: first, status: "pending", approvers: ["ops"] });

    const approved = await cli("approvals", "approve", first, "--reason", "checked by phone");
    expect(approved.code, approved.stderr).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({ status: "executed", decisionReason: "checked by phone" });
    const denied = await cli("approvals", "deny", second);
    expect(JSON.parse(denied.stdout)).toMatchObject({ status: "denied" });

    const again = await cli("approvals", "approve", second);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error 409 approval_already_decided: .*\(correlation id \S+\)/);
    const missing = await cli("approvals", "show", "apr_missing");
    expect(missing.stderr).toContain("error 404 approval_not_found");
  });
});
