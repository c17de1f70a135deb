import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.js";

describe("security configuration", () => {
  it("has pre-authentication limits on by default and lets each be turned off", () => {
    expect(loadConfig({}).preAuthRates).toEqual({
      tokenRequestsPerMinutePerAddress: 300,
      tokenRequestsPerMinutePerAgent: 60,
      anonymousCallsPerMinutePerAddress: 300,
    });
    expect(loadConfig({ ANONYMOUS_CALLS_PER_MINUTE_PER_ADDRESS: "0" }).preAuthRates.anonymousCallsPerMinutePerAddress).toBe(0);
    expect(() => loadConfig({ TOKEN_REQUESTS_PER_MINUTE_PER_AGENT: "-1" })).toThrow(/TOKEN_REQUESTS_PER_MINUTE_PER_AGENT/);
  });

  it("reads TRUST_PROXY as off, a hop count or proxy addresses, and names it when wrong", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "off" }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "1" }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: "10.0.0.0/8, 192.0.2.1" }).trustProxy).toEqual(["10.0.0.0/8", "192.0.2.1"]);
    expect(() => loadConfig({ TRUST_PROXY: "everyone" })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUST_PROXY: "everyone" })).toThrow(/TRUST_PROXY/);
  });
});
