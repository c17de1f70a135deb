import { useState } from "preact/hooks";
import { api, can, get, type Session } from "../api";
import { Badge, ErrorNotice, Field, PageHead, useAsync, useConfirm } from "../ui";

interface CatalogEntry {
  tool: string;
  action: string;
  kind?: string;
  params?: unknown;
  [k: string]: unknown;
}
interface GenericTool {
  name: string;
  baseUrl: string;
  actions: Record<string, unknown>;
}

const EXAMPLE = {
  name: "crm",
  baseUrl: "https://api.example.com",
  auth: { in: "header", name: "X-Api-Key" },
  actions: {
    get_contact: {
      method: "GET",
      path: "/v1/contacts/{id}",
      params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: { type: "string", maxLength: 64 } } },
      cacheable: true,
    },
  },
};

/** Built-in and generic tools with their schemas; define or remove a generic tool; upstream MCP servers when they exist. */
export function Tools({ session }: { session: Session }) {
  const catalog = useAsync(() => get<{ tools: CatalogEntry[] }>("/api/tools"), []);
  const generic = useAsync(() => get<{ tools: GenericTool[] }>("/api/tools/generic"), []);
  const mcp = useAsync(() => get<{ servers?: { name: string; url: string; status?: string }[] }>("/api/mcp-servers", { accept: [404] }), []);
  const [text, setText] = useState(JSON.stringify(EXAMPLE, null, 2));
  const [error, setError] = useState<unknown>();
  const [message, setMessage] = useState<string>();
  const [dialog, confirm] = useConfirm();
  const admin = can(session, "admin");
  const genericNames = new Set((generic.data?.tools ?? []).map((t) => t.name));
  const byTool = new Map<string, CatalogEntry[]>();
  for (const entry of catalog.data?.tools ?? []) byTool.set(entry.tool, [...(byTool.get(entry.tool) ?? []), entry]);

  return (
    <>
      <PageHead title="Tools" />
      {dialog}
      <ErrorNotice error={catalog.error ?? generic.error ?? error} />
      {message ? (
        <p class="ok" role="status">
          {message}
        </p>
      ) : null}
      {[...byTool].map(([tool, actions]) => (
        <details class="panel" key={tool}>
          <summary>
            <strong>{tool}</strong> <Badge value={genericNames.has(tool) ? "generic" : "built-in"} />{" "}
            <span class="muted">{actions.map((a) => a.action).join(", ")}</span>
          </summary>
          {actions.map((a) => (
            <div key={a.action}>
              <h3>{a.action}</h3>
              <pre class="small">{JSON.stringify(a.params ?? a, null, 2)}</pre>
            </div>
          ))}
          {admin && genericNames.has(tool) ? (
            <button
              type="button"
              class="danger"
              onClick={async () => {
                if (!(await confirm({ title: `Remove the generic tool ${tool}?`, confirmLabel: "Remove", danger: true })).ok) return;
                try {
                  await api("DELETE", `/api/tools/${encodeURIComponent(tool)}`);
                  setMessage(`${tool} removed.`);
                  catalog.reload();
                  generic.reload();
                } catch (err) {
                  setError(err);
                }
              }}
            >
              Remove {tool}
            </button>
          ) : null}
        </details>
      ))}
      {admin ? (
        <form
          class="panel"
          aria-labelledby="define-tool-title"
          onSubmit={async (e) => {
            e.preventDefault();
            setError(undefined);
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch (err) {
              setError(new Error(`not valid JSON: ${(err as Error).message}`));
              return;
            }
            try {
              const created = await api<{ tool: { name: string }; actions: string[] }>("POST", "/api/tools", { body });
              setMessage(`${created.tool.name} defined with ${created.actions.join(", ")}. Store its credential under Credentials if it needs one.`);
              catalog.reload();
              generic.reload();
            } catch (err) {
              setError(err);
            }
          }}
        >
          <h2 id="define-tool-title">Define a generic HTTP tool</h2>
          <Field label="Definition (JSON)" id="tool-definition" hint="name, baseUrl, auth, and actions with method, path and a JSON Schema for params.">
            <textarea id="tool-definition" class="code" rows={14} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </Field>
          <button type="submit" class="primary">
            Define tool
          </button>
        </form>
      ) : null}
      <section class="panel" aria-labelledby="mcp-title">
        <h2 id="mcp-title">Upstream MCP servers</h2>
        {mcp.data?.servers ? (
          <ul class="plain">
            {mcp.data.servers.map((s) => (
              <li key={s.name}>
                {s.name} <span class="muted">{s.url}</span> {s.status ? <Badge value={s.status} /> : null}
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted" data-testid="mcp-off">
            {mcp.loading ? "…" : "Upstream MCP servers are not enabled on this gateway."}
          </p>
        )}
      </section>
    </>
  );
}
