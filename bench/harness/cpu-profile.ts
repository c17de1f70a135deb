import fs from "node:fs";

/** The parts of V8's `.cpuprofile` (written by `node --cpu-prof`) that a self-time summary needs. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  ms: number;
  share: number;
}

/**
 * Where a frame's code lives, coarse enough to read at a glance: a package of node_modules, a
 * module of this repository, Node's own library, or V8's pseudo-frames (GC, idle, native).
 */
export function frameGroup(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : `(native) ${functionName || "anonymous"}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return url;
  const own = /\/((?:src|bench|packages)\/.+)$/.exec(url);
  return own ? own[1]! : url;
}

/** Self time per function and per group, busiest first; `(idle)` and `(program)` are left out of the shares. */
export function summariseCpuProfile(file: string, top = 25): { busyMs: number; groups: ProfileRow[]; functions: ProfileRow[] } {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!;
    if (frame.functionName === "(idle)" || frame.functionName === "(program)") continue;
    busyUs += us;
    const group = frameGroup(frame.url, frame.functionName);
    groups.set(group, (groups.get(group) ?? 0) + us);
    const fn = `${frame.functionName || "(anonymous)"} ${group}${frame.url ? `:${frame.lineNumber + 1}:${frame.columnNumber + 1}` : ""}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs === 0 ? 0 : us / busyUs }));
  return { busyMs: busyUs / 1000, groups: rows(groups), functions: rows(functions) };
}

export function printProfile(file: string, top = 25): void {
  const s = summariseCpuProfile(file, top);
  const line = (r: ProfileRow) => `  ${(r.share * 100).toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`;
  console.log(`\nCPU profile of the gateway (${file}): ${s.busyMs.toFixed(0)} ms busy (idle left out)`);
  console.log("by where the code lives (self time):");
  for (const r of s.groups) console.log(line(r));
  console.log("by function (self time):");
  for (const r of s.functions) console.log(line(r));
}
