#!/usr/bin/env node
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import fs from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { AdminClient, AgentClient, GatewayClientError, type OperatorRole } from "../client/index.js";
import { ConfigError, loadConfig } from "../config/index.js";
import { createGateway } from "../gateway.js";
import { generateAgentKeyPair } from "../identity/index.js";

/** What `gateway agent create` writes: everything the agent needs to get tokens. Mode 0600. */
interface AgentFile {
  gatewayUrl: string;
  agentId: string;
  name: string;
  role: string;
  algorithm: string;
  privateKeyPem: string;
}

const program = new Command();
program
  .name("gateway")
  .description("4Runr Gateway: identity, policy, secrets and resilience between AI agents and their tools")
  .addOption(new Option("--url <url>", "gateway base URL").env("GATEWAY_URL").default("http://127.0.0.1:3000"))
  .addOption(new Option("--admin-key <key>", "admin key (default: GATEWAY_ADMIN_KEY, then DATA_DIR/admin.key)").env("GATEWAY_ADMIN_KEY"))
  .addOption(new Option("--json", "print raw JSON"));

function adminClient(): AdminClient {
  const opts = program.opts<{ url: string; adminKey?: string }>();
  let adminKey = opts.adminKey;
  if (adminKey === undefined) {
    const file = path.resolve(process.env.DATA_DIR ?? "data", "admin.key");
    try {
      adminKey = fs.readFileSync(file, "utf8").trim();
    } catch {
      throw new Error(`no admin key: pass --admin-key, set GATEWAY_ADMIN_KEY, or run where ${file} exists`);
    }
  }
  return new AdminClient({ baseUrl: opts.url, adminKey });
}

function readAgentFile(file: string): AgentFile {
  return JSON.parse(fs.readFileSync(file, "utf8")) as AgentFile;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

program
  .command("serve")
  .description("start the gateway (configuration from environment variables, see README)")
  .action(async () => {
    const config = loadConfig(process.env);
    const gateway = await createGateway(config);
    const url = await gateway.listen();
    // Mock upstreams accept any key: store placeholders so the quick start works without real credentials.
    const placeholders: string[] = [];
    if (config.upstreamMode === "mock") {
      for (const tool of ["serpapi", "openai", "gmail_send"]) {
        if (gateway.vault.secretFor(tool) === undefined) {
          await gateway.vault.put(tool, `mock-${randomBytes(12).toString("hex")}`, { description: "placeholder for the built-in mock upstream" });
          placeholders.push(tool);
        }
      }
    }
    const where =
      gateway.store.kind === "sqlite" ? `embedded SQLite at ${path.join(config.dataDir, "gateway.db")}` : `PostgreSQL (schema ${config.databaseSchema})`;
    const lines = [
      "",
      `4Runr Gateway listening on ${url}`,
      `  console:        ${url}/console/ (sign in with the admin key or an operator key)`,
      `  data directory: ${config.dataDir}`,
      `  store:          ${where}`,
      `  upstream mode:  ${config.upstreamMode}${placeholders.length ? ` (placeholder credentials stored for ${placeholders.join(", ")})` : ""}`,
      `  policy:         ${config.features.policy ? `${gateway.policies.count()} policies (see docs/policy.md)` : "NOT ENFORCED (FF_POLICY=off)"}`,
    ];
    if (gateway.adminKey.generated) {
      lines.push(
        `  admin key:      ${gateway.adminKey.value}`,
        `                  (generated now, shown once; kept in ${gateway.adminKey.file} with mode 0600)`,
      );
    } else {
      lines.push(`  admin key:      ${gateway.adminKey.file === undefined ? "from GATEWAY_ADMIN_KEY" : `in ${gateway.adminKey.file}`}`);
    }
    const urlFlag = url === "http://127.0.0.1:3000" ? "" : ` --url ${url}`;
    lines.push(
      "",
      "Try it (in another terminal, from this directory):",
      `  npm run gateway --${urlFlag} agent create --name demo-agent --role researcher`,
      `  npm run gateway --${urlFlag} token issue --agent-file demo-agent.agent.json --scopes serpapi:search`,
      `  npm run gateway --${urlFlag} call --agent-file demo-agent.agent.json --tool serpapi --action search --params '{"q":"coffee"}'`,
      "",
    );
    process.stdout.write(lines.join("\n") + "\n");
    gateway.logger.info({ url, dataDir: config.dataDir, store: gateway.store.kind }, "gateway started");

    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      gateway.logger.info({ signal }, "shutting down: finishing in-flight requests");
      gateway.close().then(
        () => process.exit(0),
        (err: unknown) => {
          gateway.logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });

const agent = program.command("agent").description("register and manage agents (admin)");
agent
  .command("create")
  .description("generate a key pair locally, register the public key, and save the agent file (mode 0600)")
  .requiredOption("--name <name>", "agent name")
  .requiredOption("--role <role>", "agent role, e.g. researcher")
  .addOption(new Option("--algorithm <alg>", "key algorithm").choices(["EdDSA", "ES256", "RS256"]).default("EdDSA"))
  .option("--out <file>", "where to write the agent file (default ./<name>.agent.json)")
  .action(async (o: { name: string; role: string; algorithm: "EdDSA" | "ES256" | "RS256"; out?: string }) => {
    const pair = generateAgentKeyPair(o.algorithm);
    const created = await adminClient().createAgent({ name: o.name, role: o.role, publicKey: pair.publicKeyPem });
    const out = path.resolve(o.out ?? `${o.name}.agent.json`);
    const file: AgentFile = {
      gatewayUrl: program.opts<{ url: string }>().url,
      agentId: created.id,
      name: created.name,
      role: created.role,
      algorithm: created.keyAlgorithm,
      privateKeyPem: pair.privateKeyPem,
    };
    fs.writeFileSync(out, JSON.stringify(file, null, 2) + "\n", { mode: 0o600, flag: "wx" });
    if (program.opts<{ json?: boolean }>().json) print({ ...created, agentFile: out });
    else
      process.stdout.write(`agent ${created.id} (${created.name}, role ${created.role}) created; its private key is in ${out} (never sent to the gateway)\n`);
  });
agent
  .command("list")
  .description("list agents")
  .action(async () => {
    const agents = await adminClient().listAgents({ limit: 1000 });
    if (program.opts<{ json?: boolean }>().json) {
      print(agents);
      return;
    }
    for (const a of agents) process.stdout.write(`${a.id}  ${a.status.padEnd(9)}  ${a.role.padEnd(16)}  ${a.name}\n`);
    if (agents.length === 0) process.stdout.write("no agents yet\n");
  });
for (const [name, description] of [
  ["suspend", "suspend an agent: its tokens stop working at once"],
  ["activate", "re-activate a suspended agent"],
  ["revoke-tokens", "revoke every live token of an agent"],
] as const) {
  agent
    .command(`${name} <agentId>`)
    .description(description)
    .action(async (id: string) => {
      const admin = adminClient();
      print(name === "suspend" ? await admin.suspendAgent(id) : name === "activate" ? await admin.activateAgent(id) : await admin.revokeAgentTokens(id));
    });
}

const token = program.command("token").description("issue and revoke tokens");
token
  .command("issue")
  .description("prove possession of the agent's key and print a scoped access token")
  .requiredOption("--agent-file <file>", "agent file written by `agent create`")
  .requiredOption("--scopes <scopes>", "comma-separated tool:action scopes, e.g. serpapi:search,http_fetch:get")
  .option("--intent <intent>", "declared intent")
  .option("--ttl <seconds>", "token lifetime in seconds", (v) => Number(v))
  .action(async (o: { agentFile: string; scopes: string; intent?: string; ttl?: number }) => {
    const file = readAgentFile(o.agentFile);
    const client = new AgentClient({
      baseUrl: program.opts<{ url: string }>().url,
      agentId: file.agentId,
      privateKey: file.privateKeyPem,
      scopes: o.scopes
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      ...(o.intent === undefined ? {} : { intent: o.intent }),
      ...(o.ttl === undefined ? {} : { ttlSeconds: o.ttl }),
      ...(process.env.GATEWAY_ISSUER === undefined ? {} : { issuer: process.env.GATEWAY_ISSUER }),
    });
    print(await client.issueToken());
  });
token
  .command("revoke <tokenId>")
  .description("revoke one token (admin)")
  .action(async (tokenId: string) => print(await adminClient().revokeToken(tokenId)));

const operator = program.command("operator").description("named operator keys with a role: viewer, approver, admin (admin)");
operator
  .command("create")
  .description("create an operator; its key is printed once")
  .requiredOption("--name <name>", "operator name")
  .addOption(new Option("--role <role>", "what the operator may do").choices(["viewer", "approver", "admin"]).makeOptionMandatory())
  .action(async (o: { name: string; role: OperatorRole }) => print(await adminClient().createOperator(o)));
operator
  .command("list")
  .description("list operators (never their keys)")
  .action(async () => print(await adminClient().listOperators()));
operator
  .command("disable <id>")
  .description("disable an operator: its key and console sessions stop working at once")
  .action(async (id: string) => print(await adminClient().disableOperator(id)));
operator
  .command("enable <id>")
  .description("enable a disabled operator")
  .action(async (id: string) => print(await adminClient().enableOperator(id)));
operator
  .command("rotate <id>")
  .description("replace an operator's key (printed once); the old key and its sessions stop working")
  .action(async (id: string) => print(await adminClient().rotateOperatorKey(id)));

const keys = program.command("keys").description("the gateway's token-signing keys (admin)");
keys
  .command("list")
  .description("list signing keys")
  .action(async () => print(await adminClient().listKeys()));
keys
  .command("rotate")
  .description("create a new signing key; tokens signed by the old one stay valid until they expire")
  .action(async () => print(await adminClient().rotateKeys()));

program
  .command("call")
  .description("call a tool through the gateway as an agent")
  .requiredOption("--agent-file <file>", "agent file written by `agent create`")
  .requiredOption("--tool <tool>", "tool name, e.g. serpapi")
  .requiredOption("--action <action>", "action name, e.g. search")
  .option("--params <json>", "parameters as JSON", "{}")
  .action(async (o: { agentFile: string; tool: string; action: string; params: string }) => {
    const file = readAgentFile(o.agentFile);
    const client = new AgentClient({
      baseUrl: program.opts<{ url: string }>().url,
      agentId: file.agentId,
      privateKey: file.privateKeyPem,
      scopes: [`${o.tool}:${o.action}`],
      ...(process.env.GATEWAY_ISSUER === undefined ? {} : { issuer: process.env.GATEWAY_ISSUER }),
    });
    const { data, meta } = await client.call(o.tool, o.action, JSON.parse(o.params) as Record<string, unknown>);
    print({ data, meta });
  });

const policy = program.command("policy").description("policies (admin)");
policy
  .command("list")
  .description("list policies")
  .action(async () => print(await adminClient().raw("GET", "/api/policies")));
policy
  .command("apply <file>")
  .description("create a policy from a JSON or YAML file (or replace the one with the same name)")
  .action(async (file: string) => {
    const text = fs.readFileSync(file, "utf8");
    const body: unknown = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
    const admin = adminClient();
    const existing = (await admin.raw<{ policies: { id: string; name: string }[] }>("GET", "/api/policies")).policies.find(
      (p) => p.name === (body as { name?: string }).name,
    );
    print(existing ? await admin.raw("PUT", `/api/policies/${existing.id}`, body) : await admin.raw("POST", "/api/policies", body));
  });
policy
  .command("explain")
  .description("decide a call without making it: which rules applied and why")
  .requiredOption("--agent <agentId>", "the agent")
  .requiredOption("--tool <tool>", "tool name")
  .requiredOption("--action <action>", "action name")
  .option("--params <json>", "parameters as JSON", "{}")
  .option("--intent <intent>", "the token's intent")
  .option("--scopes <list>", "the token's scopes, comma separated (default: the policy alone)")
  .action(async (o: { agent: string; tool: string; action: string; params: string; intent?: string; scopes?: string }) => {
    print(
      await adminClient().raw("POST", "/api/policies/explain", {
        agentId: o.agent,
        tool: o.tool,
        action: o.action,
        params: JSON.parse(o.params) as unknown,
        ...(o.intent === undefined ? {} : { intent: o.intent }),
        ...(o.scopes === undefined ? {} : { scopes: o.scopes.split(",").map((x) => x.trim()) }),
      }),
    );
  });

program
  .command("credential <tool>")
  .description("store a tool credential, read from standard input (never from the command line, where it would stay in shell history)")
  .action(async (tool: string) => {
    const secret = fs.readFileSync(0, "utf8").trim();
    if (secret === "") throw new Error("pipe the credential on standard input, e.g. `gateway credential serpapi < key.txt`");
    print(await adminClient().putCredential(tool, secret));
  });

const auditCommand = program
  .command("audit")
  .description("show audit records (`audit verify` checks the hash chains)")
  .option("--agent <agentId>")
  .option("--tool <tool>")
  .option("--decision <decision>", "allow, deny or error")
  .option("--limit <n>", "records", "50")
  .action(async (o: { agent?: string; tool?: string; decision?: string; limit: string }) => {
    const q = new URLSearchParams({ limit: o.limit });
    if (o.agent) q.set("agentId", o.agent);
    if (o.tool) q.set("tool", o.tool);
    if (o.decision) q.set("decision", o.decision);
    const { records } = await adminClient().raw<{ records: Record<string, unknown>[] }>("GET", `/api/audit?${q.toString()}`);
    for (const r of records)
      process.stdout.write(
        `${String(r.at)}  ${String(r.decision).padEnd(5)} ${String(r.status)}  ${String(r.tool)}:${String(r.action)}  agent ${String(r.agentId)}  ${String(r.reason ?? "")}  ${String(r.latencyMs)} ms\n`,
      );
    if (records.length === 0) process.stdout.write("no audit records match\n");
  });
auditCommand
  .command("verify")
  .description("check every audit hash chain; prints the first broken link of each and exits 1 if any is broken (admin)")
  .action(async () => {
    const report = await adminClient().raw<{ ok: boolean; chains: number; records: number; unchained: number; broken: Record<string, unknown>[] }>(
      "GET",
      "/api/audit/verify",
    );
    if (program.opts<{ json?: boolean }>().json) print(report);
    else {
      process.stdout.write(
        `${report.ok ? "OK" : "BROKEN"}: ${report.records} records in ${report.chains} chains checked${report.unchained > 0 ? `, ${report.unchained} written before chaining (not checkable)` : ""}\n`,
      );
      for (const b of report.broken)
        process.stdout.write(
          `  chain ${String(b.chainId)}: ${String(b.problem)} at seq ${String(b.seq)}${b.recordId === undefined ? "" : ` (record ${String(b.recordId)})`}${b.foundSeq === undefined ? "" : ` (next found: seq ${String(b.foundSeq)})`}\n`,
        );
    }
    if (!report.ok) process.exitCode = 1;
  });

const approvals = program.command("approvals").description("calls held for a person's approval (admin)");
approvals
  .command("list")
  .description("list approvals, newest first")
  .option("--status <status>", "pending, approved, denied, expired, executed or failed")
  .option("--agent <agentId>")
  .option("--tool <tool>")
  .option("--limit <n>", "approvals", "50")
  .option("--cursor <cursor>", "continue after a previous page (its nextCursor)")
  .action(async (o: { status?: string; agent?: string; tool?: string; limit: string; cursor?: string }) => {
    const q = new URLSearchParams({ limit: o.limit });
    if (o.status) q.set("status", o.status);
    if (o.agent) q.set("agentId", o.agent);
    if (o.tool) q.set("tool", o.tool);
    if (o.cursor) q.set("cursor", o.cursor);
    const page = await adminClient().raw<{ approvals: Record<string, unknown>[]; nextCursor: string | null }>("GET", `/api/approvals?${q.toString()}`);
    if (program.opts<{ json?: boolean }>().json) {
      print(page);
      return;
    }
    for (const a of page.approvals)
      process.stdout
        .write(`${String(a.id)}  ${String(a.status).padEnd(8)}  ${String(a.tool)}:${String(a.action)}  agent ${String(a.agentId)}  expires ${String(a.expiresAt)}  ${String(a.reason)}
`);
    if (page.approvals.length === 0) process.stdout.write("no approvals match\n");
    if (page.nextCursor !== null) process.stdout.write(`more: --cursor ${page.nextCursor}\n`);
  });
approvals
  .command("show <id>")
  .description("one approval: the call (secrets masked), why it is held, the decision and the result")
  .action(async (id: string) => print(await adminClient().raw("GET", `/api/approvals/${encodeURIComponent(id)}`)));
for (const [name, description] of [
  ["approve", "approve: the stored call runs now, exactly as asked, and its result is kept on the approval"],
  ["deny", "deny: the call is never sent"],
] as const) {
  approvals
    .command(`${name} <id>`)
    .description(description)
    .option("--reason <text>", "why (recorded in the audit trail)")
    .action(async (id: string, o: { reason?: string }) =>
      print(await adminClient().raw("POST", `/api/approvals/${encodeURIComponent(id)}/${name}`, o.reason === undefined ? undefined : { reason: o.reason })),
    );
}

program
  .command("bench")
  .description("run the proof harness (same options as `npm run bench --`, e.g. --scenario baseline --duration 0.05)")
  .allowUnknownOption(true)
  .helpOption(false)
  .argument("[args...]")
  .action((args: string[]) => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), process.argv[1]?.endsWith(".ts") ? "../.." : "../../..");
    const run = spawnSync(process.execPath, ["--import", "tsx", path.join(root, "bench/harness/cli.ts"), ...args], { cwd: root, stdio: "inherit" });
    process.exitCode = run.status ?? 1;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof GatewayClientError) {
    process.stderr.write(`error ${err.status} ${err.code}: ${err.message}${err.correlationId ? ` (correlation id ${err.correlationId})` : ""}\n`);
  } else if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
});
