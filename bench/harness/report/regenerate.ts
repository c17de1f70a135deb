/** `npm run report -- <run directory>`: rebuilds report.md/.html/results.json from the raw data. */
import { writeReport } from "./run-dir.js";

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write("usage: npm run report -- reports/<run directory>\n");
  process.exit(2);
}
const r = writeReport(dir);
process.stdout.write(`report regenerated in ${dir}: verdict ${r.verdict}, ${r.totals.requests} requests\n`);
