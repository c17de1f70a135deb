import { createRequire } from "node:module";
import type { Redis, RedisOptions } from "ioredis";

const require = createRequire(import.meta.url);

/**
 * A Redis connection, with ioredis loaded on first use: an instance without `REDIS_URL` never
 * loads it (~9 MB of RSS at start). Loaded synchronously (ioredis is CommonJS), so the classes
 * that hold a connection keep their synchronous constructors.
 */
export function connectRedis(url: string, options: RedisOptions): Redis {
  const { Redis: Client } = require("ioredis") as typeof import("ioredis");
  return new Client(url, options);
}
