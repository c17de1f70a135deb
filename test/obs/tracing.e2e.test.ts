import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { http as request, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { newAgent } from "../helpers/agents.js";

/** OTLP/HTTP JSON as an exporter sends it (only the fields the test reads). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number };
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number; boolValue?: boolean } }[];
}
const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? v?.boolValue : Number(v.intValue));
};

/** A real OTLP/HTTP receiver: decodes each export and keeps its spans. */
async function startReceiver() {
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      contentTypes.push(String(req.headers["content-type"]));
      const doc = JSON.parse(body) as { resourceSpans: { resource: unknown; scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    contentTypes,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function until<T>(read: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("OpenTelemetry traces", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let upstream: http.Server;
  let upstreamUrl: string;
  const upstreamTraceparents: string[] = [];
  let t: TestGateway;

  beforeAll(async () => {
    receiver = await startReceiver();
    // The upstream fails the first attempt of each call, so the retry shows in the trace.
    let n = 0;
    upstream = http.createServer((req, res) => {
      upstreamTraceparents.push(String(req.headers.traceparent));
      res.writeHead(n++ % 2 === 0 ? 503 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: n % 2 === 0 }));
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    t = await startTestGateway({
      SSRF_ALLOW: "127.0.0.1/32",
      POLICY_DEFAULTS: "off",
      RETRY_BASE_MS: "1",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "50",
      OTEL_SERVICE_NAME: "gateway-under-test",
    });
    await t.admin.defineTool({
      name: "crm",
      baseUrl: upstreamUrl,
      auth: { in: "none" },
      actions: { lookup: { method: "GET", path: "/v1/items/{id}", params: { type: "object", required: ["id"], properties: { id: { type: "string" } } } } },
    });
    await t.admin.raw("POST", "/api/policies", { name: "all", subject: { all: true }, rules: [{ effect: "allow", scopes: ["*"] }] });
  });
  afterAll(async () => {
    await t.close();
    upstream.close();
    await receiver.close();
  });

  it("exports a span per call, a child per stage and one per upstream attempt, continuing the client's trace and sent upstream", async () => {
    const { client, agent } = await newAgent(t, { scopes: ["crm:lookup"] });
    const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const clientSpan = "00f067aa0ba902b7";
    const answer = await client.call<any>("crm", "lookup", { id: "42" }, { headers: { traceparent: `00-${clientTrace}-${clientSpan}-01` } });
    expect(answer.meta.attempts).toBe(2);

    const callSpan = await until(() => receiver.spans.find((s) => s.name === "rest crm:lookup"), "the call's span");
    await until(() => (receiver.spans.filter((s) => s.name === "attempt crm:lookup").length >= 2 ? true : undefined), "both attempt spans");
    const mine = receiver.spans.filter((s) => s.traceId === clientTrace);
    // The client's trace continues: the call span's parent is the client's span.
    expect(callSpan.traceId).toBe(clientTrace);
    expect(callSpan.parentSpanId).toBe(clientSpan);
    expect(callSpan.kind).toBe(2); // SERVER
    expect(attr(callSpan, "gateway.correlation_id")).toBe(answer.meta.correlationId);
    expect(attr(callSpan, "gateway.attempts")).toBe(2);
    expect(attr(callSpan, "gateway.agent_id")).toBe(agent.id);

    // Each stage is the child of the one around it, in the road's order.
    const byId = new Map(mine.map((s) => [s.spanId, s]));
    const chain: string[] = [];
    for (let s = byId.get(mine.find((x) => x.name === "stage retry")!.spanId); s !== undefined; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined)
      chain.unshift(s.name);
    expect(chain).toEqual([
      "rest crm:lookup",
      "stage authenticate",
      "stage resolve",
      "stage authorize",
      "stage credential",
      "stage hold",
      "stage idempotency",
      "stage redact",
      "stage cache",
      "stage retry",
    ]);

    // Retries are visible: under the retry span, each attempt asks the breaker, then goes upstream; the first failed.
    const retrySpan = mine.find((s) => s.name === "stage retry")!;
    const byAttempt = (a: OtlpSpan, b: OtlpSpan) => Number(attr(a, "gateway.attempt")) - Number(attr(b, "gateway.attempt"));
    const breakers = mine.filter((s) => s.name === "stage breaker").sort(byAttempt);
    expect(breakers.map((s) => [s.parentSpanId, attr(s, "gateway.attempt")])).toEqual([
      [retrySpan.spanId, 1],
      [retrySpan.spanId, 2],
    ]);
    const attempts = mine.filter((s) => s.name === "attempt crm:lookup").sort(byAttempt);
    expect(attempts.map((s) => [s.parentSpanId, attr(s, "gateway.attempt"), s.kind])).toEqual([
      [breakers[0]!.spanId, 1, 3],
      [breakers[1]!.spanId, 2, 3],
    ]);
    expect(attempts[0]!.status?.code).toBe(2); // ERROR
    expect(attr(attempts[0]!, "http.response.status_code")).toBe(502);
    expect(attr(attempts[1]!, "http.response.status_code")).toBe(200);
    // The upstream saw each attempt's own span as its parent.
    expect(upstreamTraceparents.slice(-2)).toEqual(attempts.map((s) => `00-${clientTrace}-${s.spanId}-01`));
    expect(receiver.contentTypes[0]).toMatch(/json/);
  });

  it("records refusals as error spans with the gateway's code", async () => {
    const r = await request(`${t.url}/api/proxy`, {
      method: "POST",
      headers: { authorization: "Bearer not-a-token" },
      body: { tool: "crm", action: "lookup", params: { id: "1" } },
    });
    expect(r.status).toBe(401);
    const span = await until(
      () => receiver.spans.find((s) => s.name === "rest crm:lookup" && attr(s, "gateway.error_code") === "token_invalid"),
      "the refused call's span",
    );
    expect(span.status?.code).toBe(2);
    expect(attr(span, "gateway.outcome")).toBe("denied");
  });

  it("is off without an OTLP endpoint, and a bad endpoint stops the gateway with the variable's name", () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).tracing).toMatchObject({
      endpoint: "http://collector:4318/v1/traces",
      serviceName: "4runr-gateway",
      sampleRatio: 1,
    });
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://otel.example/traces",
        OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=abc%3D,team=ops",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.25",
      }).tracing,
    ).toMatchObject({ endpoint: "https://otel.example/traces", headers: { "x-api-key": "abc=", team: "ops" }, sampleRatio: 0.25 });
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_SAMPLER_ARG: "2", OTEL_TRACES_SAMPLER: "traceidratio" })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG/,
    );
  });
});
