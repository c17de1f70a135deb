import { describe, expect, it } from "vitest";
import { readExchange, runLoad, type Exchange, type Sample } from "../../bench/harness/loadgen.js";
import { arrivals, dispatch, expectedRequests, stageAt, targetRate, type Stage } from "../../bench/harness/schedule.js";
import { SCENARIOS, scaledStages } from "../../bench/harness/scenarios.js";
import type { PlannedRequest } from "../../bench/harness/traffic.js";
import { VirtualClock } from "./virtual-clock.js";

const close = (a: number, b: number, eps = 1e-9) => Math.abs(a - b) < eps;

describe("arrival schedule", () => {
  it("spaces a constant rate evenly: 10 RPS for 1 s is due at 0.1, 0.2, … 1.0 s", () => {
    const times = [...arrivals([{ durationS: 1, fromRps: 10, toRps: 10 }])];
    expect(times).toHaveLength(10);
    times.forEach((t, i) => expect(close(t, (i + 1) / 10)).toBe(true));
  });

  it("ramps linearly: 0 → 10 RPS over 2 s puts the k-th request where the integral 2.5·t² reaches k", () => {
    const times = [...arrivals([{ durationS: 2, fromRps: 0, toRps: 10 }])];
    expect(times).toHaveLength(10);
    times.forEach((t, i) => expect(close(t, Math.sqrt((i + 1) / 2.5))).toBe(true));
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeLessThan(gaps[i - 1]!);
  });

  it("ramps down: 10 → 0 RPS over 2 s sends 10 requests with growing gaps, the last at the very end", () => {
    const times = [...arrivals([{ durationS: 2, fromRps: 10, toRps: 0 }])];
    expect(times).toHaveLength(10);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThan(gaps[i - 1]!);
    expect(close(times[9]!, 2, 1e-6)).toBe(true);
    // 10t − 2.5t² = 1 → t = 2 − √(4 − 0.4·1)/… ; check the first one exactly.
    expect(close(times[0]!, (10 - Math.sqrt(100 - 10)) / 5)).toBe(true);
  });

  it("carries fractions across stages and never sends more than the area under the curve", () => {
    const stages: Stage[] = [
      { durationS: 0.5, fromRps: 3, toRps: 3 },
      { durationS: 0.5, fromRps: 3, toRps: 3 },
      { durationS: 1, fromRps: 0, toRps: 0 },
      { durationS: 3, fromRps: 7, toRps: 1 },
    ];
    const times = [...arrivals(stages)];
    expect(times).toHaveLength(Math.floor(expectedRequests(stages)));
    expect(close(times[1]!, 2 / 3)).toBe(true); // the 2nd of 3 RPS, straddling the stage boundary
    expect(times.every((t) => t <= 1 + 1e-9 || t >= 2)).toBe(true); // nothing inside the silent stage
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
  });

  it("keeps the full-length big profile's count and bounds", () => {
    const stages = scaledStages(SCENARIOS.big!, 1);
    const times = [...arrivals(stages)];
    expect(times).toHaveLength(Math.floor(expectedRequests(stages)));
    expect(times[times.length - 1]!).toBeLessThanOrEqual(40 * 60);
  });

  it("interpolates the target rate and finds the stage", () => {
    const stages: Stage[] = [
      { durationS: 10, fromRps: 0, toRps: 60 },
      { durationS: 10, fromRps: 60, toRps: 60 },
    ];
    expect(targetRate(stages, 5)).toBe(30);
    expect(targetRate(stages, 15)).toBe(60);
    expect(targetRate(stages, 25)).toBe(0);
    expect(stageAt(stages, 9.99)).toBe(0);
    expect(stageAt(stages, 10)).toBe(1);
  });

  it("scales scenario stages but keeps each at least a second", () => {
    const spike = scaledStages(SCENARIOS.spike!, 0.01);
    expect(spike.every((s) => s.durationS >= 1)).toBe(true);
    expect(scaledStages(SCENARIOS.baseline!, 0.5)[0]!.durationS).toBe(300);
  });
});

describe("dispatcher (virtual clock)", () => {
  it("fires every request at its scheduled time with no lag when preparation is instant", async () => {
    const clock = new VirtualClock();
    const fired: { at: number; scheduled: number; lag: number }[] = [];
    const result = await clock.run(
      dispatch({
        stages: [{ durationS: 1, fromRps: 4, toRps: 4 }],
        clock,
        prepare: () => null,
        fire: (_i, scheduled, lag) => fired.push({ at: clock.now(), scheduled, lag }),
      }),
    );
    expect(result.sent).toBe(4);
    expect(fired.map((f) => f.scheduled)).toEqual([250, 500, 750, 1000]);
    expect(fired.every((f) => f.at === f.scheduled && f.lag === 0)).toBe(true);
  });

  it("never skips a request when the sender falls behind: later ones go late and the lag says so", async () => {
    const clock = new VirtualClock();
    const fired: { at: number; scheduled: number; lag: number }[] = [];
    let n = 0;
    await clock.run(
      dispatch({
        stages: [{ durationS: 1, fromRps: 10, toRps: 10 }],
        clock,
        // The third preparation (e.g. a token refresh) takes 250 ms.
        prepare: async () => {
          if (++n === 3) await clock.sleep(250);
        },
        fire: (_i, scheduled, lag) => fired.push({ at: clock.now(), scheduled, lag }),
      }),
    );
    expect(fired).toHaveLength(10);
    expect(fired.map((f) => f.lag)).toEqual([0, 0, 250, 150, 50, 0, 0, 0, 0, 0]);
    expect(fired[3]!.at).toBe(550);
  });

  it("runs hooks (chaos on/off) at their fraction of the run, even between arrivals", async () => {
    const clock = new VirtualClock();
    const hookTimes: number[] = [];
    await clock.run(
      dispatch({
        stages: [{ durationS: 2, fromRps: 1, toRps: 1 }],
        clock,
        prepare: () => null,
        fire: () => {},
        hooks: [
          { fraction: 0.25, run: async () => void hookTimes.push(clock.now()) },
          { fraction: 0.9, run: async () => void hookTimes.push(clock.now()) },
        ],
      }),
    );
    expect(hookTimes).toEqual([500, 1800]);
  });
});

describe("load generator (virtual clock, fake transport)", () => {
  const planned: PlannedRequest = {
    tool: "serpapi",
    action: "search",
    params: { q: "x" },
    token: "t",
    headers: {},
    expect: "allow",
    kind: "serpapi",
    duplicate: false,
  };
  const answer = (): Exchange => ({
    status: 200,
    headers: { "server-timing": "gateway;dur=1.5, upstream;dur=3.5" },
    text: '{"data":{},"meta":{"cache":"miss","attempts":1}}',
  });

  it("measures latency from the scheduled time, so a stall shows in every request it delayed (no coordinated omission)", async () => {
    const clock = new VirtualClock();
    // The server answers in 5 ms, except that it stalls from 200 ms to 600 ms: anything arriving then waits.
    const transport = {
      async send(): Promise<Exchange> {
        const now = clock.now();
        await clock.sleep(now >= 200 && now < 600 ? 600 - now + 5 : 5);
        return answer();
      },
      close: async () => {},
    };
    const result = await clock.run(
      runLoad({ target: "http://unused", stages: [{ durationS: 1, fromRps: 10, toRps: 10 }], next: async () => planned, clock, transport }),
    );
    expect(result.samples).toHaveLength(10);
    const byT = new Map(result.samples.map((s) => [Math.round(s.t * 1000), s.e2eMs]));
    expect(byT.get(100)).toBe(5);
    expect(byT.get(200)).toBe(405);
    expect(byT.get(300)).toBe(305);
    expect(byT.get(500)).toBe(105);
    expect(byT.get(600)).toBe(5);
    expect(result.generatorLagP99Ms).toBe(0);
    expect(result.samples.every((s) => s.status === 200 && s.overheadMs === 1.5 && s.upstreamMs === 3.5)).toBe(true);
  });

  it("counts a late generator: latency includes the time the request waited to be sent", async () => {
    const clock = new VirtualClock();
    let n = 0;
    const transport = { send: async () => (await clock.sleep(5), answer()), close: async () => {} };
    const result = await clock.run(
      runLoad({
        target: "http://unused",
        stages: [{ durationS: 1, fromRps: 10, toRps: 10 }],
        next: async () => {
          if (++n === 1) await clock.sleep(120);
          return planned;
        },
        clock,
        transport,
      }),
    );
    expect(result.samples[0]!.lagMs).toBe(120);
    expect(result.samples[0]!.e2eMs).toBe(125);
    expect(result.samples[1]!.lagMs).toBe(20);
    expect(result.generatorLagMaxMs).toBeCloseTo(120, 1);
  });

  it("records transport failures as client errors instead of losing the sample", async () => {
    const clock = new VirtualClock();
    const transport = {
      async send(): Promise<Exchange> {
        await clock.sleep(1);
        throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
      },
      close: async () => {},
    };
    const result = await clock.run(
      runLoad({ target: "http://unused", stages: [{ durationS: 0.5, fromRps: 4, toRps: 4 }], next: async () => planned, clock, transport }),
    );
    expect(result.samples).toHaveLength(2);
    expect(result.samples.every((s) => s.status === 0 && s.code === "client_ECONNREFUSED")).toBe(true);
  });
});

describe("reading an answer", () => {
  const base = (): Sample => ({ t: 0, kind: "serpapi", tool: "serpapi", expect: "allow", duplicate: false, status: 0, e2eMs: 0, lagMs: 0 });

  it("takes overhead and upstream time from Server-Timing and cache/attempts from meta", () => {
    const s = base();
    readExchange(s, {
      status: 200,
      headers: { "server-timing": "gateway;dur=0.42, upstream;dur=27.1" },
      text: '{"data":{},"meta":{"cache":"hit","attempts":0}}',
    });
    expect(s).toMatchObject({ status: 200, overheadMs: 0.42, upstreamMs: 27.1, cache: "hit", attempts: 0 });
  });

  it("takes the error code and attempts from an error body, and flags a leaked secret", () => {
    const s = base();
    readExchange(s, { status: 504, headers: {}, text: '{"error":{"code":"upstream_timeout","details":{"attempts":3},"message":"sk-secret-1"}}' }, [
      "sk-secret-1",
    ]);
    expect(s).toMatchObject({ status: 504, code: "upstream_timeout", attempts: 3, leaked: true });
    const garbage = base();
    readExchange(garbage, { status: 502, headers: {}, text: "<html>" });
    expect(garbage.code).toBe("unparseable_response");
  });
});
