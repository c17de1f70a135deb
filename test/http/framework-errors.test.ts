import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { rawRequest, type RawResponse } from "../helpers/raw-http.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";

/** Refusals made by the router or by Node's HTTP parser still carry the one error shape. */
describe("framework and parser refusals use the error shape", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => t.close());

  function expectShape(r: { status: number; json: any; headers: Headers | Record<string, string> }, status: number, code: string) {
    expect(r.status).toBe(status);
    expect(r.json?.error?.code, JSON.stringify(r.json)).toBe(code);
    expect(r.json.error.message.length).toBeGreaterThan(10);
    const header = r.headers instanceof Headers ? r.headers.get("x-correlation-id") : r.headers["x-correlation-id"];
    expect(r.json.error.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(header).toBe(r.json.error.correlationId);
  }
  const admin = { authorization: "" };
  beforeAll(() => {
    admin.authorization = `Bearer ${t.adminKey}`;
  });

  it("lets a path parameter up to the schema's limit reach the route (not a router 414)", async () => {
    const r = await http(`${t.url}/api/agents/${"a".repeat(120)}`, { headers: admin });
    expectShape(r, 404, "agent_not_found");
  });

  it("names a path parameter over the schema's limit as invalid_request", async () => {
    const r = await http(`${t.url}/api/agents/${"a".repeat(200)}`, { headers: admin });
    expectShape(r, 400, "invalid_request");
    expect(r.json.error.message).toMatch(/id/);
  });

  it("answers a path parameter longer than the router accepts with 414 in the shape", async () => {
    const r = await http(`${t.url}/api/agents/${"a".repeat(5000)}`, { headers: admin });
    expectShape(r, 414, "uri_too_long");
  });

  it("answers bad percent-encoding with 400 in the shape", async () => {
    const r = await rawRequest(t.url, `GET /api/agents/%E0%A4%A HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.adminKey}\r\nConnection: close\r\n\r\n`);
    expectShape(r, 400, "invalid_request");
  });

  const parserCases: [string, string, number, string][] = [
    ["header overflow", `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, 431, "headers_too_large"],
    ["a bare CR in a header", `GET /health HTTP/1.1\r\nHost: x\r\nX-Odd: a\rb\r\n\r\n`, 400, "invalid_request"],
    [
      "Content-Length with Transfer-Encoding",
      `POST /api/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
      "invalid_request",
    ],
    ["an unknown method", `FOO@ /health HTTP/1.1\r\nHost: x\r\n\r\n`, 400, "invalid_request"],
    ["a malformed request line", `GET /health HTTP/9\r\n\r\n`, 400, "invalid_request"],
  ];

  it.each(parserCases)("answers %s in the shape", async (_name, request, status, code) => {
    const r: RawResponse = await rawRequest(t.url, request);
    expectShape(r, status, code);
    expect(r.headers["content-type"]).toMatch(/application\/json/);
    // The refusal is in the log under the same correlation id, for whoever gets the complaint.
    const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.correlationId === r.json.error.correlationId);
    expect(line).toMatchObject({ status, msg: "malformed request refused by the HTTP parser" });
  });

  it("answers a client too slow to send its request with 408 in the shape, instead of waiting for ever", async () => {
    const slow = await startTestGateway({ REQUEST_TIMEOUT_MS: "300" });
    try {
      // Headers never finished: Node's request timeout fires and the handler answers.
      const r = await rawRequest(slow.url, "POST /api/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", 10_000);
      expectShape(r, 408, "request_timeout");
      // Headers complete, body never finished.
      const body = await rawRequest(
        slow.url,
        'POST /api/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"agentId"',
        10_000,
      );
      expect(body.status).toBe(408);
      expect(body.json?.error?.code).toBe("request_timeout");
    } finally {
      await slow.close();
    }
  });

  it("does not cut off a call whose upstream takes longer than the request timeout (it bounds receiving only)", async () => {
    const slowUpstream = await startTestGateway({ REQUEST_TIMEOUT_MS: "200", MOCK_LATENCY_MS: "1000" });
    try {
      await storeBuiltinCredentials(slowUpstream);
      await allowEverything(slowUpstream);
      const { client } = await newAgent(slowUpstream);
      // The mock upstream answers after 1 s, five times the request timeout.
      const r = await client.call<{ organic_results: unknown[] }>("serpapi", "search", { q: "slow upstream" });
      expect(Array.isArray(r.data.organic_results)).toBe(true);
    } finally {
      await slowUpstream.close();
    }
  });

  it("keeps serving after all of that", async () => {
    expect((await http(`${t.url}/health`)).status).toBe(200);
  });
});
