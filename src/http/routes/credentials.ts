import type { FastifyInstance } from "fastify";
import { NO_CONTROL_CHARACTERS } from "../schemas.js";
import type { CredentialMetadata, CredentialVault } from "../../vault/index.js";

const view = (m: CredentialMetadata) => ({
  tool: m.tool,
  activeVersion: m.activeVersion,
  versions: m.versions.map((v) => ({ ...v, createdAt: new Date(v.createdAt).toISOString() })),
});

/** Admin routes for tool credentials. No route ever returns a secret. */
export function registerCredentialRoutes(app: FastifyInstance, deps: { vault: CredentialVault }) {
  const { vault } = deps;
  const toolParams = { type: "object", properties: { tool: { type: "string", minLength: 1, maxLength: 64 } } } as const;

  app.post(
    "/api/credentials",
    {
      config: { role: "admin" },
      schema: {
        body: {
          type: "object",
          additionalProperties: false,
          required: ["tool", "secret"],
          properties: {
            tool: { type: "string", minLength: 1, maxLength: 64 },
            secret: { type: "string", minLength: 1, maxLength: 16384 },
            description: { type: "string", maxLength: 256, pattern: NO_CONTROL_CHARACTERS },
            activate: { type: "boolean" },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { tool: string; secret: string; description?: string; activate?: boolean };
      const options: { description?: string; activate?: boolean } = {};
      if (body.description !== undefined) options.description = body.description;
      if (body.activate !== undefined) options.activate = body.activate;
      reply.code(201);
      return view(await vault.put(body.tool, body.secret, options));
    },
  );

  app.get("/api/credentials", { config: { role: "viewer" } }, async () => ({ credentials: (await vault.list()).map(view) }));

  app.get("/api/credentials/:tool", { config: { role: "viewer" }, schema: { params: toolParams } }, async (request) =>
    view(await vault.describe((request.params as { tool: string }).tool)),
  );

  app.post(
    "/api/credentials/:tool/versions/:version/activate",
    {
      config: { role: "admin" },
      schema: {
        params: {
          type: "object",
          properties: { tool: { type: "string", minLength: 1, maxLength: 64 }, version: { type: "string", pattern: "^[1-9]\\d{0,8}$" } },
        },
      },
    },
    async (request) => {
      const { tool, version } = request.params as { tool: string; version: string };
      return view(await vault.activate(tool, Number(version)));
    },
  );
}
