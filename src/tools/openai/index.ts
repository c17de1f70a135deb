import type { RoadAction } from "../../proxy/catalog.js";
import type { ApiClient } from "../upstream.js";

/** `openai:chat`: Chat Completions; the answer keeps OpenAI's shape, usage included. */
export function openaiTool(deps: { baseUrl: string; api: ApiClient }): RoadAction[] {
  return [
    {
      tool: "openai",
      action: "chat",
      description: "Chat completion (OpenAI /v1/chat/completions). Returns the chat.completion object with usage.",
      paramsSchema: {
        type: "object",
        additionalProperties: false,
        required: ["model", "messages"],
        properties: {
          model: { type: "string", minLength: 1, maxLength: 128 },
          messages: {
            type: "array",
            minItems: 1,
            maxItems: 256,
            items: {
              type: "object",
              additionalProperties: false,
              required: ["role", "content"],
              properties: {
                role: { type: "string", enum: ["system", "developer", "user", "assistant", "tool"] },
                content: { type: "string", maxLength: 200_000 },
                name: { type: "string", maxLength: 64 },
              },
            },
          },
          max_tokens: { type: "integer", minimum: 1, maximum: 131_072 },
          temperature: { type: "number", minimum: 0, maximum: 2 },
          top_p: { type: "number", minimum: 0, maximum: 1 },
          stop: { anyOf: [{ type: "string", maxLength: 256 }, { type: "array", maxItems: 4, items: { type: "string", maxLength: 256 } }] },
          seed: { type: "integer" },
        },
      },
      // No side effect upstream, so a retry is safe; answers vary, so never cached.
      idempotent: true,
      cacheable: false,
      timeoutMs: 60_000,
      needsCredential: true,
      invoke(params, ctx) {
        return deps.api.json("openai", new URL("/v1/chat/completions", deps.baseUrl), { method: "POST", bearer: true, body: params }, ctx);
      },
    },
  ];
}
