import { describe, expect, it } from "vitest";
import { maskCredentialFields, REDACTED } from "../../src/vault/index.js";

describe("maskCredentialFields: what people see of a held call's parameters", () => {
  it("masks credential-named fields at any depth and credential-shaped strings, keeps the rest, and copies", () => {
    const params = {
      to: ["a@example.com"],
      max_tokens: 100,
      headers: { Authorization: "Bearer abc.def", "X-Api-Key": "k-123", accept: "json" },
      nested: [{ password: "hunter2", client_secret: "s", note: "sk-abcdefghijklmnop" }, "ghp_abcdefghij1234"],
      token: "",
      text: "a normal sentence with the word token in it",
    };
    const masked = maskCredentialFields(params);
    expect(masked).toEqual({
      to: ["a@example.com"],
      max_tokens: 100,
      headers: { Authorization: REDACTED, "X-Api-Key": REDACTED, accept: "json" },
      nested: [{ password: REDACTED, client_secret: REDACTED, note: REDACTED }, REDACTED],
      token: "",
      text: "a normal sentence with the word token in it",
    });
    expect(params.headers.Authorization).toBe("Bearer abc.def");
  });

  it("walks deep values without recursion", () => {
    let deep: unknown = { password: "p" };
    for (let i = 0; i < 50_000; i++) deep = { a: deep };
    expect(() => maskCredentialFields(deep)).not.toThrow();
  });
});
