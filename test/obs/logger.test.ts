import { describe, expect, it } from "vitest";
import { censorFields, createLogger } from "../../src/obs/logger.js";

/** Every line the logger writes, parsed. */
function capture(scrub?: (line: string) => string) {
  const lines: Record<string, any>[] = [];
  const logger = createLogger("debug", { write: (line: string) => void lines.push(JSON.parse(line)) }, scrub);
  return { logger, lines };
}

describe("log lines never carry credentials", () => {
  it("censors credential fields at the top, nested, in arrays, in request headers and in child bindings", () => {
    const { logger, lines } = capture();
    logger.child({ token: "bound-token-1" }).info(
      {
        token: "t-1",
        apiKey: "k-1",
        req: { headers: { authorization: "Bearer abc", cookie: "sid=1", "x-api-key": "xk", accept: "json" } },
        agent: { privateKeyPem: "-----BEGIN PRIVATE KEY-----", name: "a" },
        list: [{ password: "p-1", ok: 1 }],
        keep: "visible",
      },
      "hello",
    );
    const line = lines[0]!;
    expect(JSON.stringify(line)).not.toMatch(/t-1|k-1|Bearer abc|sid=1|xk|BEGIN PRIVATE|p-1|bound-token-1/);
    expect(line.token).toBe("[REDACTED]");
    expect(line.req.headers.accept).toBe("json");
    expect(line.agent.name).toBe("a");
    expect(line.list[0].ok).toBe(1);
    expect(line.keep).toBe("visible");
    expect(line.msg).toBe("hello");
  });

  it("does not change the caller's object, and returns it as is when nothing is censored", () => {
    const clean = { a: 1, nested: { b: [1, 2, { c: "x" }] } };
    expect(censorFields(clean)).toBe(clean);
    const dirty = { nested: { secret: "s" } };
    const out = censorFields(dirty);
    expect(out.nested.secret).toBe("[REDACTED]");
    expect(dirty.nested.secret).toBe("s");
  });

  it("keeps an error's message and stack when one of its fields is censored", () => {
    const { logger, lines } = capture();
    const err = Object.assign(new Error("boom"), { credential: "c-1", code: "E1" });
    logger.error({ err }, "failed");
    const line = lines[0]!;
    expect(JSON.stringify(line)).not.toContain("c-1");
    expect(line.err.message).toBe("boom");
    expect(line.err.code).toBe("E1");
    expect(String(line.err.stack)).toContain("boom");
  });

  it("runs the scrub over every line, whatever field a known secret hides in", () => {
    const { logger, lines } = capture((line) => line.split("sk-known-secret").join("[REDACTED]"));
    logger.info({ upstreamSaid: "bad key sk-known-secret" }, "upstream failed");
    expect(lines[0]!.upstreamSaid).toBe("bad key [REDACTED]");
  });
});
