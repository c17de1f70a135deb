import type { RoadAction } from "../../proxy/catalog.js";
import type { ApiClient } from "../upstream.js";

/** The engines the gateway lets agents pick (SerpAPI has more; add them here). */
export const SERPAPI_ENGINES = ["google", "bing", "duckduckgo", "yahoo", "google_news", "google_scholar"];

const OPTIONAL_QUERY = ["location", "hl", "gl", "google_domain", "safe", "start", "num", "device"] as const;

/** `serpapi:search`: web search through SerpAPI's `/search.json`, credential sent as `api_key`. */
export function serpapiTool(deps: { baseUrl: string; api: ApiClient }): RoadAction[] {
  return [
    {
      tool: "serpapi",
      action: "search",
      description: "Web search (SerpAPI). Returns SerpAPI's JSON: search_metadata, organic_results, …",
      paramsSchema: {
        type: "object",
        additionalProperties: false,
        required: ["q"],
        properties: {
          q: { type: "string", minLength: 1, maxLength: 2048 },
          engine: { type: "string", enum: SERPAPI_ENGINES, default: "google" },
          num: { type: "integer", minimum: 1, maximum: 100 },
          start: { type: "integer", minimum: 0, maximum: 1000 },
          location: { type: "string", maxLength: 256 },
          hl: { type: "string", pattern: "^[a-z]{2}(-[A-Za-z]{2})?$" },
          gl: { type: "string", pattern: "^[a-z]{2}$" },
          google_domain: { type: "string", pattern: "^google\\.[a-z.]{2,10}$" },
          safe: { type: "string", enum: ["active", "off"] },
          device: { type: "string", enum: ["desktop", "tablet", "mobile"] },
        },
      },
      idempotent: true,
      hints: { title: "Web search", readOnly: true, openWorld: true },
      cacheable: true,
      cacheTtlSeconds: 300,
      timeoutMs: 10_000,
      needsCredential: true,
      invoke(params, ctx) {
        const url = new URL("/search.json", deps.baseUrl);
        url.searchParams.set("engine", String(params.engine ?? "google"));
        url.searchParams.set("q", String(params.q));
        for (const name of OPTIONAL_QUERY) if (params[name] !== undefined) url.searchParams.set(name, String(params[name]));
        url.searchParams.set("api_key", ctx.credential ?? "");
        return deps.api.json("serpapi", url, { method: "GET" }, ctx);
      },
    },
  ];
}
