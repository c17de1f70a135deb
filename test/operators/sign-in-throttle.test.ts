import { describe, expect, it } from "vitest";
import { SignInThrottle } from "../../src/operators/index.js";
import { TestClock } from "../helpers/gateway.js";

describe("sign-in throttle", () => {
  it("closes an address after maxFailures within the window, says how long, and opens when the window has passed", () => {
    const clock = new TestClock();
    const throttle = new SignInThrottle({ now: clock.now, maxFailures: 3, windowMs: 60_000 });
    for (let i = 0; i < 2; i++) throttle.failed("10.0.0.1");
    expect(throttle.retryAfterSeconds("10.0.0.1")).toBe(0);
    clock.advance(20_000);
    throttle.failed("10.0.0.1");
    // The window counts from the first failure: 40 s are left.
    expect(throttle.retryAfterSeconds("10.0.0.1")).toBe(40);
    expect(throttle.retryAfterSeconds("10.0.0.2")).toBe(0);
    clock.advance(40_000);
    expect(throttle.retryAfterSeconds("10.0.0.1")).toBe(0);
    // A fresh window after that.
    throttle.failed("10.0.0.1");
    expect(throttle.retryAfterSeconds("10.0.0.1")).toBe(0);
  });

  it("forgets an address's failures when it signs in, and stays bounded under many addresses", () => {
    const clock = new TestClock();
    const throttle = new SignInThrottle({ now: clock.now, maxFailures: 2, windowMs: 60_000, maxAddresses: 3 });
    throttle.failed("a");
    throttle.succeeded("a");
    throttle.failed("a");
    expect(throttle.retryAfterSeconds("a")).toBe(0);
    throttle.failed("a");
    expect(throttle.retryAfterSeconds("a")).toBe(60);
    for (const address of ["b", "c", "d"]) throttle.failed(address);
    // "a" was the oldest entry: pushed out to keep the table at three addresses.
    expect(throttle.retryAfterSeconds("a")).toBe(0);
  });
});
