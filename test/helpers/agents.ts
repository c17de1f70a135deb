import { AgentClient } from "../../src/client/index.js";
import { generateAgentKeyPair } from "../../src/identity/index.js";
import type { TestGateway } from "./gateway.js";

let counter = 0;

/** Registers an agent with its own key pair and returns a client holding the private key. */
export async function newAgent(t: TestGateway, options: { role?: string; scopes?: string[]; intent?: string; now?: () => number } = {}) {
  const pair = generateAgentKeyPair("EdDSA");
  const agent = await t.admin.createAgent({ name: `agent-${process.pid}-${++counter}`, role: options.role ?? "assistant", publicKey: pair.publicKeyPem });
  const client = new AgentClient({
    baseUrl: t.url,
    agentId: agent.id,
    privateKey: pair.privateKeyPem,
    scopes: options.scopes ?? ["serpapi:search", "http_fetch:*", "openai:chat", "gmail_send:send"],
    // Tests look at the gateway's own answers: the SDK must not retry them away.
    retry: { maxRetries: 0 },
    ...(options.intent === undefined ? {} : { intent: options.intent }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  return { agent, client, privateKeyPem: pair.privateKeyPem };
}

/** Stores a credential for each built-in tool that needs one. */
export async function storeBuiltinCredentials(t: TestGateway, secrets: { serpapi?: string; openai?: string; gmail_send?: string } = {}) {
  await t.admin.putCredential("serpapi", secrets.serpapi ?? "serp-test-key-0001");
  await t.admin.putCredential("openai", secrets.openai ?? "sk-test-key-0001");
  await t.admin.putCredential("gmail_send", secrets.gmail_send ?? "ya29.test-token-0001");
}

/** For suites about something other than policy: one global policy that allows every tool, no limits. */
export async function allowEverything(t: TestGateway) {
  await t.admin.raw("POST", "/api/policies", { name: "test-allow-everything", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
}
