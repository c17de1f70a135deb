import { describe, expect, it } from "vitest";
import { toGatewayError } from "../../src/http/errors.js";

describe("error mapping: database data exceptions", () => {
  const pgError = (code: string) => Object.assign(new Error(`pg says: invalid byte sequence for encoding "UTF8": 0x00 (${code})`), { code, severity: "ERROR" });

  it("answers a PostgreSQL data exception (class 22) as invalid_request, without the database's words", () => {
    for (const code of ["22021", "22003", "22P02"]) {
      const mapped = toGatewayError(pgError(code));
      expect(mapped.code).toBe("invalid_request");
      expect(mapped.status).toBe(400);
      expect(mapped.message).not.toMatch(/pg says|UTF8|0x00/);
      expect(mapped.logDetail).toContain(code);
    }
  });

  it("leaves every other database error an internal error", () => {
    expect(toGatewayError(pgError("23505")).code).toBe("internal_error");
    expect(toGatewayError(pgError("57014")).code).toBe("internal_error");
    expect(toGatewayError(Object.assign(new Error("x"), { code: "22021" })).code).toBe("internal_error"); // not from the database
  });
});
