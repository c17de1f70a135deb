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
              required: ["role"],
              properties: {
                role: { type: "string", enum: ["system", "developer", "user", "assistant", "tool"] },
                // Text, or content parts (text, image_url…); null for an assistant turn that only calls tools.
                content: { anyOf: [{ type: "string", maxLength: 200_000 }, { type: "null" }, { type: "array", maxItems: 64, items: { type: "object" } }] },
                name: { type: "string", maxLength: 64 },
                tool_calls: { type: "array", maxItems: 128, items: { type: "object" } },
                tool_call_id: { type: "string", maxLength: 128 },
                refusal: { anyOf: [{ type: "string", maxLength: 10_000 }, { type: "null" }] },
              },
            },
          },
          max_tokens: { type: "integer", minimum: 1, maximum: 131_072 },
          max_completion_tokens: { type: "integer", minimum: 1, maximum: 131_072 },
          n: { type: "integer", minimum: 1, maximum: 8 },
          presence_penalty: { type: "number", minimum: -2, maximum: 2 },
          frequency_penalty: { type: "number", minimum: -2, maximum: 2 },
          logprobs: { type: "boolean" },
          top_logprobs: { type: "integer", minimum: 0, maximum: 20 },
          response_format: { type: "object" },
          tools: { type: "array", maxItems: 128, items: { type: "object" } },
          tool_choice: { anyOf: [{ type: "string", maxLength: 64 }, { type: "object" }] },
          parallel_tool_calls: { type: "boolean" },
          user: { type: "string", maxLength: 256 },
          // Streaming is the OpenAI-compatible door's to ask for (it pipes the events through); a call's params never stream.
          stream: { const: false },
          stream_options: { type: "object", additionalProperties: false, properties: { include_usage: { type: "boolean" } } },
          temperature: { type: "number", minimum: 0, maximum: 2 },
          top_p: { type: "number", minimum: 0, maximum: 1 },
          stop: {
            anyOf: [
              { type: "string", maxLength: 256 },
              { type: "array", maxItems: 4, items: { type: "string", maxLength: 256 } },
            ],
          },
          seed: { type: "integer" },
        },
      },
      // No side effect upstream, so a retry is safe; answers vary, so never cached.
      idempotent: true,
      hints: { title: "Chat completion", readOnly: true, openWorld: true },
      cacheable: false,
      timeoutMs: 60_000,
      needsCredential: true,
      invoke(params, ctx) {
        const url = new URL("/v1/chat/completions", deps.baseUrl);
        if (ctx.stream) return deps.api.stream("openai", url, { method: "POST", bearer: true, body: { ...params, stream: true } }, ctx);
        return deps.api.json("openai", url, { method: "POST", bearer: true, body: params }, ctx);
      },
    },
    {
      tool: "openai",
      action: "models",
      description: "The models the upstream offers (OpenAI /v1/models); the OpenAI-compatible GET /v1/models shows those policy lets the agent chat with.",
      paramsSchema: { type: "object", additionalProperties: false, properties: {} },
      idempotent: true,
      cacheable: true,
      timeoutMs: 15_000,
      needsCredential: true,
      invoke(_params, ctx) {
        return deps.api.json("openai", new URL("/v1/models", deps.baseUrl), { method: "GET", bearer: true }, ctx);
      },
    },
  ];
}
