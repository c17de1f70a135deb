import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../bench/harness/processes.js";
import { BEGIN, END, renderProofTable, TABLE_FILES, withTable } from "../../bench/harness/report/proof-table.js";

const writeRun = (root: string, scenario: string, verdict: string, missed: { name: string; value: string; target: string }[]) => {
  const dir = path.join(root, scenario);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "run.json"),
    JSON.stringify({ run: { scenario, startedAt: "2026-11-30T18:00:00.000Z", durationS: 600, scale: 1, command: `npm run bench -- --scenario ${scenario}` } }),
  );
  fs.writeFileSync(
    path.join(dir, "results.json"),
    JSON.stringify({
      verdict,
      totals: { requests: 15000, calls: 14500, judgedCalls: 14500 },
      successRate: 0.9995,
      overhead: { count: 14000, p50: 1.5, p99: 4.25 },
      selfReportedOverhead: { p99: 0.6 },
      comparison: { ratioP99: 1.04 },
      security: { probes: 450, probesRefused: 450, leaks: 0 },
      missed,
    }),
  );
};

describe("the README's proof table", () => {
  it("is generated from each run's results, verdict and misses included", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "4runr-proof-"));
    writeRun(root, "chaos", "NOT READY", [{ name: "Breaker serpapi closed after faults", value: "still open at the end", target: "≤ 30 s" }]);
    writeRun(root, "baseline", "READY", []);
    const table = renderProofTable(root, "docs/reports/");
    const rows = table.split("\n").slice(2);
    expect(rows[0]).toMatch(
      /^\| \[baseline\]\(docs\/reports\/baseline\/report\.md\) \| 2026-11-30 \| 10\.0 min \| n\/a \| \*\*READY\*\* \| 15000 requests; success 99\.95 %; client-observed overhead p50\/p99 1\.50\/4\.25 ms \(self-reported p99 0\.60 ms\); e2e p99 ×1\.04 the bare proxy; 450\/450 probes refused as expected; 0 secrets exposed \| none \|$/,
    );
    expect(rows[1]).toContain("| **NOT READY** |");
    expect(rows[1]).toContain("Breaker serpapi closed after faults (still open at the end; target ≤ 30 s)");
    expect(withTable(`a\n${BEGIN}\nold\n${END}\nb`, "new")).toBe(`a\n${BEGIN}\nnew\n${END}\nb`);
    expect(() => withTable("no markers", "x")).toThrow(/markers are missing/);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("in README.md and docs/benchmarks.md matches the committed runs (npm run proof:table)", () => {
    for (const { file, linkPrefix } of TABLE_FILES) {
      const text = fs.readFileSync(path.join(ROOT, file), "utf8");
      expect(text, `${file} is stale: run npm run proof:table`).toBe(withTable(text, renderProofTable(path.join(ROOT, "docs/reports"), linkPrefix)));
    }
  });
});
