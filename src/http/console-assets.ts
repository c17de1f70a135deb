import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { GatewayError } from "../errors/index.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

/** The console's Content-Security-Policy: its own scripts and styles only, no inline code, no framing, no other origin. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Where `npm run build` puts the console (dist/console at the repository root), from the source or the built file alike. */
export function defaultConsoleDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, "dist", "console");
}

function securityHeaders(reply: FastifyReply): void {
  reply.header("content-security-policy", CONSOLE_CSP);
  reply.header("x-frame-options", "DENY");
  reply.header("x-content-type-options", "nosniff");
  reply.header("referrer-policy", "no-referrer");
  reply.header("cross-origin-opener-policy", "same-origin");
  reply.header("cross-origin-resource-policy", "same-origin");
  reply.header("permissions-policy", "camera=(), microphone=(), geolocation=()");
}

/**
 * Serves the built console under `/console/` with strict security headers. Files are read from
 * `dir` only (no path may leave it); anything that is not a file there gets the page itself, so
 * a reload on any console address works. Without a build, `/console/` says how to make one.
 */
export function registerConsoleAssets(app: FastifyInstance, deps: { dir: string }) {
  const root = path.resolve(deps.dir);

  app.get("/console", async (_request, reply) => {
    securityHeaders(reply);
    return reply.redirect("/console/", 302);
  });

  app.get("/console/*", async (request, reply) => {
    securityHeaders(reply);
    const wanted = (request.params as { "*": string })["*"];
    let file = path.resolve(root, `.${path.posix.normalize(`/${wanted}`)}`);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) file = path.join(root, "index.html");
    if (!fs.existsSync(file)) throw new GatewayError("not_found", "the console is not built: run `npm run build`");
    const hashed = path.relative(root, file).startsWith(`assets${path.sep}`);
    reply.header("cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
    reply.type(CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream");
    return reply.send(await fs.promises.readFile(file));
  });
}
