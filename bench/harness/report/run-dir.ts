import fs from "node:fs";
import path from "node:path";
import type { Sample } from "../loadgen.js";
import { parseMetrics, type TimelinePoint } from "../observe.js";
import { computeResults, type RunData } from "./compute.js";
import { renderHtml } from "./html.js";
import { renderMarkdown } from "./markdown.js";

const ndjson = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : "");
const readNdjson = <T>(file: string): T[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as T)
    : [];

/** Writes the raw data of a run; the report is derived from these files only. */
export function writeRawData(dir: string, d: RunData, metricsBeforeText: string, metricsAfterText: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "run.json"), JSON.stringify({ run: d.run, targets: d.targets, comparison: d.comparison ? { rateRps: d.comparison.rateRps, durationS: d.comparison.durationS } : undefined }, null, 2));
  fs.writeFileSync(path.join(dir, "samples.ndjson"), ndjson(d.samples));
  fs.writeFileSync(path.join(dir, "timeline.ndjson"), ndjson(d.timeline));
  fs.writeFileSync(path.join(dir, "metrics-before.txt"), metricsBeforeText);
  fs.writeFileSync(path.join(dir, "metrics-after.txt"), metricsAfterText);
  if (d.comparison) {
    fs.writeFileSync(path.join(dir, "comparison-bare.ndjson"), ndjson(d.comparison.bare));
    fs.writeFileSync(path.join(dir, "comparison-gateway.ndjson"), ndjson(d.comparison.gateway));
  }
}

export function readRawData(dir: string): RunData {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "run.json"), "utf8")) as { run: RunData["run"]; targets: RunData["targets"]; comparison?: { rateRps: number; durationS: number } };
  const d: RunData = {
    run: meta.run,
    targets: meta.targets,
    samples: readNdjson<Sample>(path.join(dir, "samples.ndjson")),
    timeline: readNdjson<TimelinePoint>(path.join(dir, "timeline.ndjson")),
    metricsBefore: parseMetrics(fs.readFileSync(path.join(dir, "metrics-before.txt"), "utf8")),
    metricsAfter: parseMetrics(fs.readFileSync(path.join(dir, "metrics-after.txt"), "utf8")),
  };
  if (meta.comparison) d.comparison = { ...meta.comparison, bare: readNdjson<Sample>(path.join(dir, "comparison-bare.ndjson")), gateway: readNdjson<Sample>(path.join(dir, "comparison-gateway.ndjson")) };
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
