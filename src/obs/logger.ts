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

/**
 * The gateway's JSON logger. `destination` lets tests capture every line; `scrub`, when given,
 * rewrites each line before it is written (the vault's redactor removes known secret values
 * wherever they appear, whatever the field).
 */
export function createLogger(level: LogLevel, destination?: DestinationStream, scrub?: (line: string) => string): Logger {
  const out: DestinationStream = destination ?? pino.destination({ fd: 1, sync: false });
  const target: DestinationStream = scrub === undefined ? out : { write: (line: string) => out.write(scrub(line)) };
  return pino(
    {
      level,
      base: { service: "4runr-gateway" },
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    target,
  );
}

export type { Logger };
