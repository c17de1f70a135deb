import net from "node:net";

/** Whether a TCP service answers on host:port within `timeoutMs`. */
export function answers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Decides whether a suite that needs a service runs. In CI a missing service is a failure
 * (the suite runs and fails); elsewhere the suite is skipped with a loud warning.
 */
export async function serviceAvailable(name: string, host: string, port: number): Promise<boolean> {
  if (await answers(host, port)) return true;
  if (process.env.CI) return true; // let the suite run and fail loudly
  process.stderr.write(`\n!!! ${name} is not answering on ${host}:${port}: SKIPPING the tests that need it (they are required in CI)\n\n`);
  return false;
}

export const postgresAvailable = () => serviceAvailable("PostgreSQL", "127.0.0.1", Number(new URL(POSTGRES_URL).port || 5432));
export const redisAvailable = () => serviceAvailable("Redis", "127.0.0.1", Number(new URL(REDIS_URL).port || 6379));

/** A schema name of its own for one test run, so runs never collide. */
export function uniqueSchema(prefix = "t"): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}
