import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "../config/index.js";

/**
 * Paths pino censors wherever they appear: credentials, tokens, keys and auth headers
 * must never reach a log line.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers['x-api-key']",
  "headers.authorization",
  "authorization",
  "token",
  "assertion",
  "privateKey",
  "privateKeyPem",
  "secret",
  "credential",
  "apiKey",
  "api_key",
  "password",
  "adminKey",
  "masterKey",
  "*.token",
  "*.assertion",
  "*.privateKey",
  "*.privateKeyPem",
  "*.secret",
  "*.credential",
  "*.apiKey",
  "*.api_key",
  "*.password",
];

/** The gateway's JSON logger. `destination` lets tests capture every line. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "4runr-gateway" },
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
