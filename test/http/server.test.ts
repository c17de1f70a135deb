import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";

describe("HTTP surface", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ BODY_LIMIT_BYTES: "2048" });
  });
  afterAll(async () => t.close());

  it("echoes a valid correlation id and replaces an invalid one", async () => {
    const kept = await http(`${t.url}/health`, { headers: { "x-correlation-id": "abc-123-def-456" } });
    expect(kept.headers.get("x-correlation-id")).toBe("abc-123-def-456");
    const replaced = await http(`${t.url}/health`, { headers: { "x-correlation-id": "bad id with spaces" } });
    expect(replaced.headers.get("x-correlation-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers health and readiness", async () => {
    const health = await http(`${t.url}/health`);
    expect(health.json).toMatchObject({ status: "ok", store: "sqlite" });
    const ready = await http(`${t.url}/ready`);
    expect(ready.status).toBe(200);
    expect(ready.json.checks.store.status).toBe("up");
  });

  it("uses one error shape for unknown routes, bad JSON, wrong media type and oversized bodies", async () => {
    const cases = [
      [await http(`${t.url}/nope`), 404, "not_found"],
      [await http(`${t.url}/api/tokens`, { rawBody: "{not json", headers: { "content-type": "application/json" } }), 400, "invalid_request"],
      [await http(`${t.url}/api/tokens`, { rawBody: "", headers: { "content-type": "application/json" } }), 400, "invalid_request"],
      [await http(`${t.url}/api/tokens`, { rawBody: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } }), 415, "unsupported_media_type"],
      [await http(`${t.url}/api/tokens`, { body: { agentId: "x".repeat(5000) } }), 413, "payload_too_large"],
    ] as const;
    for (const [r, status, code] of cases) {
      expect(r.status, code).toBe(status);
      expect(r.json.error.code).toBe(code);
      expect(r.json.error.message.length).toBeGreaterThan(5);
      expect(r.json.error.correlationId).toBe(r.headers.get("x-correlation-id"));
      expect(r.text).not.toMatch(/at .*\.js:\d+/); // no stack traces
    }
  });

  it("writes one JSON log line per request with correlation id, route, status and latency", async () => {
    await http(`${t.url}/health`, { headers: { "x-correlation-id": "log-line-check-1" } });
    const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.correlationId === "log-line-check-1");
    expect(line).toMatchObject({ msg: "request", method: "GET", route: "/health", status: 200 });
    expect(typeof line.latencyMs).toBe("number");
  });
});
