import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { allowEverything, newAgent, storeBuiltinCredentials } from "../helpers/agents.js";
import { freePort } from "../helpers/own-services.js";
import { deployedExpressions, DEPLOY } from "../helpers/promtool.js";

const prometheusInstalled = spawnSync("prometheus", ["--version"]).status === 0;
if (!prometheusInstalled && !process.env.CI) process.stderr.write("\n!!! prometheus is not installed: SKIPPING the live PromQL check (required in CI)\n\n");

/** Expressions that must return series once the gateway has served a little traffic. */
const MUST_HAVE_DATA = [
  "sum(rate(gateway_requests_total[1m]))",
  "histogram_quantile(0.95, sum by (le) (rate(gateway_request_duration_ms_bucket[5m])))",
  "gateway_breaker_state",
  "sum by (result) (rate(gateway_token_validations_total[5m]))",
  "sum by (reason) (rate(gateway_policy_denials_total[5m]))",
  "gateway_process_resident_memory_bytes",
  "max(gateway_approvals_pending)",
  "gateway:error_ratio_5m",
  'sum(rate(gateway_cache_requests_total{result="hit"}[5m])) / clamp_min(sum(rate(gateway_cache_requests_total[5m])), 1e-9)',
];

describe.skipIf(!prometheusInstalled && !process.env.CI)("a real Prometheus scraping a gateway runs every dashboard and alert query", () => {
  let t: TestGateway;
  let prom: ChildProcess;
  let promUrl: string;
  let dir: string;

  beforeAll(async () => {
    t = await startTestGateway({ POLICY_DEFAULTS: "off" });
    await allowEverything(t);
    await storeBuiltinCredentials(t);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-prom-"));
    fs.copyFileSync(path.join(DEPLOY, "prometheus", "alerts.yml"), path.join(dir, "alerts.yml"));
    const target = new URL(t.url).host;
    fs.writeFileSync(
      path.join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: ["${target}"]\n`,
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prom = spawn(
      "prometheus",
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`${promUrl}/-/ready`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 30_000);
  afterAll(async () => {
    prom?.kill("SIGKILL");
    await t?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("every expression evaluates without error, and the key ones have data after traffic", async () => {
    const { client } = await newAgent(t, { scopes: ["serpapi:search", "openai:chat"] });
    let uncached = 0;
    const drive = async () => {
      await client.call("serpapi", "search", { q: "prom" });
      await client.call("serpapi", "search", { q: `prom ${++uncached}` });
      await client.call("gmail_send", "send", { to: "a@b.com", subject: "s", text: "t" }).catch(() => undefined); // outside the token's scopes
      await http(`${t.url}/api/proxy`, {
        headers: { authorization: "Bearer forged.token.value" },
        body: { tool: "serpapi", action: "search", params: { q: "x" } },
      });
    };
    // Traffic across several scrapes so rate() has two samples to work with.
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      await drive();
      await new Promise((r) => setTimeout(r, 250));
    }
    const query = async (expr: string) => {
      const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
      return (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
    };
    const exprs = deployedExpressions();
    const failures: string[] = [];
    for (const { where, expr } of exprs) {
      const r = await query(expr);
      if (r.status !== "success") failures.push(`${where}: ${r.error}`);
    }
    expect(failures).toEqual([]);
    for (const expr of MUST_HAVE_DATA) {
      expect(
        exprs.map((e) => e.expr),
        `${expr} is not used by any dashboard or rule`,
      ).toContain(expr);
      let r = await query(expr);
      for (let i = 0; i < 20 && (r.data?.result.length ?? 0) === 0; i++) {
        await new Promise((res) => setTimeout(res, 500));
        r = await query(expr);
      }
      expect(r.data?.result.length, `${expr} has no series`).toBeGreaterThan(0);
    }
  }, 40_000);
});
