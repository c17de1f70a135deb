import fs from "node:fs";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import type { Sample } from "../loadgen.js";
import { parseMetrics, type TimelinePoint } from "../observe.js";
import { computeResults, DEFAULT_TARGETS, type RunData } from "./compute.js";
import { renderHtml } from "./html.js";
import { renderMarkdown } from "./markdown.js";

const ndjson = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : "");

/** Raw rows are stored gzipped (`<name>.ndjson.gz`) so full-length runs stay small enough to commit. */
function writeNdjson(dir: string, name: string, rows: readonly unknown[]): void {
  fs.writeFileSync(path.join(dir, `${name}.ndjson.gz`), gzipSync(ndjson(rows), { level: 9 }));
}

/** Reads `<name>.ndjson.gz`, or a plain `<name>.ndjson` left by an older run; no file → no rows. */
export function readNdjson<T>(dir: string, name: string): T[] {
  const gz = path.join(dir, `${name}.ndjson.gz`);
  const plain = path.join(dir, `${name}.ndjson`);
  const text = fs.existsSync(gz) ? gunzipSync(fs.readFileSync(gz)).toString("utf8") : fs.existsSync(plain) ? fs.readFileSync(plain, "utf8") : "";
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as T);
}

/** Writes the raw data of a run; the report is derived from these files only. */
export function writeRawData(dir: string, d: RunData, metricsBeforeText: string, metricsAfterText: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "run.json"),
    JSON.stringify(
      { run: d.run, targets: d.targets, comparison: d.comparison ? { rateRps: d.comparison.rateRps, durationS: d.comparison.durationS } : undefined },
      null,
      2,
    ),
  );
  writeNdjson(dir, "samples", d.samples);
  writeNdjson(dir, "timeline", d.timeline);
  fs.writeFileSync(path.join(dir, "metrics-before.txt"), metricsBeforeText);
  fs.writeFileSync(path.join(dir, "metrics-after.txt"), metricsAfterText);
  if (d.comparison) {
    writeNdjson(dir, "comparison-bare", d.comparison.bare);
    writeNdjson(dir, "comparison-gateway", d.comparison.gateway);
  }
}

export function readRawData(dir: string): RunData {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "run.json"), "utf8")) as {
    run: RunData["run"];
    targets: RunData["targets"];
    comparison?: { rateRps: number; durationS: number };
  };
  const d: RunData = {
    run: meta.run,
    // Targets added since the run was recorded take their defaults.
    targets: { ...DEFAULT_TARGETS, ...meta.targets },
    samples: readNdjson<Sample>(dir, "samples"),
    timeline: readNdjson<TimelinePoint>(dir, "timeline"),
    metricsBefore: parseMetrics(fs.readFileSync(path.join(dir, "metrics-before.txt"), "utf8")),
    metricsAfter: parseMetrics(fs.readFileSync(path.join(dir, "metrics-after.txt"), "utf8")),
  };
  if (meta.comparison)
    d.comparison = { ...meta.comparison, bare: readNdjson<Sample>(dir, "comparison-bare"), gateway: readNdjson<Sample>(dir, "comparison-gateway") };
  return d;
}

/** Computes the results and writes report.md, report.html and results.json next to the raw data. */
export function writeReport(dir: string): ReturnType<typeof computeResults> {
  const d = readRawData(dir);
  const results = computeResults(d);
  const markdown = renderMarkdown(d, results);
  fs.writeFileSync(path.join(dir, "report.md"), markdown);
  fs.writeFileSync(path.join(dir, "report.html"), renderHtml(d, results, markdown));
  const { series: _series, ...summary } = results;
  fs.writeFileSync(path.join(dir, "results.json"), JSON.stringify(summary, null, 2));
  return results;
}
