import fs from "node:fs";
import path from "node:path";
import { ROOT } from "../../bench/harness/processes.js";

/** The report users must get: the section headings of bench/harness/report/template.md, in order. */
export const TEMPLATE_HEADINGS = fs
  .readFileSync(path.join(ROOT, "bench/harness/report/template.md"), "utf8")
  .split("\n")
  .filter((l) => /^#{1,3} /.test(l));

/** Left-over template text or broken arithmetic in a rendered report. */
export const PLACEHOLDERS = [
  /\[X\]/,
  /\[DATE\]/,
  /\[DURATION\]/,
  /\[VERSION\]/,
  /\[ENVIRONMENT\]/,
  /\[DETAILS\]/,
  /\[RECOMMENDATION/,
  /\[TIMESTAMP\]/,
  /\[SUCCESS\/FAILURE\]/,
  /\[STRONG/,
  /\bTODO\b|\bTBD\b|\{\{|\bundefined\b|\bNaN\b|Infinity|\[object Object\]/,
  /✅\/❌/,
];
