import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DEPLOY = path.join(ROOT, "deploy");

/** Whether promtool is installed; in CI its absence fails the suite (scripts/ensure-tools.sh installs it). */
export function promtoolAvailable(): boolean {
  const found = spawnSync("promtool", ["--version"]).status === 0;
  if (!found && !process.env.CI)
    process.stderr.write("\n!!! promtool is not installed: SKIPPING the Prometheus checks (required in CI; scripts/ensure-tools.sh installs it)\n\n");
  return found || Boolean(process.env.CI);
}

export function promtool(args: string[], input?: string): { status: number; output: string } {
  const r = spawnSync("promtool", args, { input, encoding: "utf8", cwd: ROOT });
  return { status: r.status ?? -1, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** Every PromQL expression the dashboards and the alert/recording rules use, with where it comes from. */
export function deployedExpressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const dir = path.join(DEPLOY, "grafana", "dashboards");
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const dash = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
    for (const p of dash.panels) for (const t of p.targets) out.push({ where: `${file} › ${p.title}`, expr: t.expr });
  }
  const rules = parseYaml(fs.readFileSync(path.join(DEPLOY, "prometheus", "alerts.yml"), "utf8")) as {
    groups: { rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  for (const g of rules.groups) for (const r of g.rules) out.push({ where: `alerts.yml › ${r.alert ?? r.record}`, expr: r.expr });
  return out;
}
