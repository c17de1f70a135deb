/**
 * Keeps secrets out of a run's artifacts: the recorded command line and configuration are written
 * into run.json, report.md and report.html, which get committed as proof.
 */
const SECRET_NAME = /key|token|secret|password|passwd|credential/i;
export const REDACTED = "***";

/** Replaces the value of every secret-named flag (`--admin-key v`, `--metrics-token=v`), secret-named variable (`FOO_KEY=v`) and URL password. */
export function redactCommandLine(command: string): string {
  return command
    .replace(/(--[\w-]+)(=|\s+)("[^"]*"|'[^']*'|\S+)/g, (whole, flag: string, sep: string) => (SECRET_NAME.test(flag) ? `${flag}${sep}${REDACTED}` : whole))
    .replace(/\b([A-Za-z_][\w]*)=("[^"]*"|'[^']*'|\S+)/g, (whole, name: string) => (SECRET_NAME.test(name) ? `${name}=${REDACTED}` : whole))
    .replace(/(\w+:\/\/[^\s:/@]*:)[^\s@/]+@/g, `$1${REDACTED}@`);
}

/** The configuration with every secret-named value and URL password replaced by `***` (the names stay, so a reader sees what was set). */
export function redactConfig(config: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([name, value]) => [name, SECRET_NAME.test(name) ? REDACTED : redactCommandLine(value)]));
}
