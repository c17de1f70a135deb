import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayClientError } from "../../src/client/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

describe("pattern guards over HTTP", () => {
  let t: TestGateway;
  const admin = () => ({ authorization: `Bearer ${t.adminKey}` });

  beforeAll(async () => {
    t = await startTestGateway({ UPSTREAM_MODE: "mock" });
    await storeBuiltinCredentials(t);
  });
  afterAll(async () => {
    await t.close();
  });

  it("a pattern RE2 cannot match in linear time is a 400 naming the field, with a correlation id", async () => {
    const r = await request(`${t.url}/api/policies`, {
      headers: admin(),
      body: {
        name: "backref",
        subject: { all: true },
        rules: [
          { effect: "allow", scopes: ["*"] },
          { effect: "allow", scopes: ["serpapi:*"], guards: { q: { pattern: "^(a+)\\1$" } } },
        ],
      },
    });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: "policy_invalid", details: { field: "rules[1].guards.q.pattern" } });
    expect(r.json.error.correlationId ?? r.headers.get("x-correlation-id")).toBeTruthy();
  });

  it("^(a+)+$ is accepted and a hostile value is refused at once (RE2), not after minutes of backtracking", async () => {
    const r = await request(`${t.url}/api/policies`, {
      headers: admin(),
      body: {
        name: "nested",
        subject: { role: "redos" },
        rules: [
          { effect: "allow", scopes: ["*"] },
          { effect: "allow", scopes: ["serpapi:*"], guards: { q: { pattern: "^(a+)+$" } } },
        ],
      },
    });
    expect(r.status).toBe(201);
    const { client } = await newAgent(t, { role: "redos", scopes: ["serpapi:search"] });
    const err = await client.call("serpapi", "search", { q: `${"a".repeat(2000)}!` }).then(
      () => undefined,
      (e: unknown) => e as GatewayClientError,
    );
    expect(err?.code).toBe("guard_failed");
    expect((await client.call<any>("serpapi", "search", { q: "aaaa" })).data.search_parameters.q).toBe("aaaa");
  });
});
