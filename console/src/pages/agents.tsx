import { useState } from "preact/hooks";
import { api, can, get, post, query, type Session } from "../api";
import { generateAgentKeys } from "../keys";
import { Badge, ErrorNotice, Field, PageHead, Pager, ShownOnce, time, useAsync, useConfirm } from "../ui";
import { AuditTable, type AuditRecord } from "./audit";

export interface Agent {
  id: string;
  name: string;
  role: string;
  status: "active" | "suspended";
  keyAlgorithm: string;
  createdAt: string;
  updatedAt: string;
}

const PAGE = 25;

function CreateAgent({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState("researcher");
  const [mode, setMode] = useState<"generate" | "paste">("generate");
  const [publicKey, setPublicKey] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [keyFile, setKeyFile] = useState<{ name: string; text: string }>();
  const fieldError = (field: string) => {
    const e = error as { body?: { details?: { issues?: { path: string }[]; field?: string } } } | undefined;
    const d = e?.body?.details;
    return d?.field === field || d?.issues?.some((i) => i.path.endsWith(field)) ? "check this field" : undefined;
  };

  if (keyFile)
    return (
      <ShownOnce
        label="The agent's private key was made in this browser and never sent to the gateway: download its key file now."
        value={keyFile.text}
        filename={`${keyFile.name}.agent.json`}
        onDone={() => setKeyFile(undefined)}
      />
    );
  return (
    <form
      class="panel"
      aria-labelledby="create-agent-title"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          const pair = mode === "generate" ? await generateAgentKeys() : undefined;
          const created = await post<Agent>("/api/agents", { name, role, publicKey: pair ? pair.publicKeyPem : publicKey });
          if (pair) {
            const file = {
              gatewayUrl: location.origin,
              agentId: created.id,
              name: created.name,
              role: created.role,
              algorithm: pair.algorithm,
              privateKeyPem: pair.privateKeyPem,
            };
            setKeyFile({ name: created.name, text: JSON.stringify(file, null, 2) + "\n" });
          }
          setName("");
          setPublicKey("");
          onCreated();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 id="create-agent-title">New agent</h2>
      <div class="row">
        <Field label="Name" id="agent-name" error={fieldError("name")}>
          <input id="agent-name" required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Role" id="agent-role" error={fieldError("role")} hint="Policies apply by role, e.g. researcher or assistant.">
          <input id="agent-role" required maxLength={64} value={role} onInput={(e) => setRole(e.currentTarget.value)} />
        </Field>
      </div>
      <fieldset>
        <legend>Key pair</legend>
        <label class="inline">
          <input type="radio" name="key-mode" checked={mode === "generate"} onChange={() => setMode("generate")} /> Generate in this browser and download the
          key file
        </label>
        <label class="inline">
          <input type="radio" name="key-mode" checked={mode === "paste"} onChange={() => setMode("paste")} /> Paste a public key (PEM or JWK)
        </label>
      </fieldset>
      {mode === "paste" ? (
        <Field label="Public key" id="agent-public-key" error={fieldError("publicKey")}>
          <textarea
            id="agent-public-key"
            rows={5}
            required
            value={publicKey}
            onInput={(e) => setPublicKey(e.currentTarget.value)}
            placeholder="-----BEGIN PUBLIC KEY-----"
          />
        </Field>
      ) : null}
      <ErrorNotice error={error} />
      <button type="submit" class="primary" disabled={busy}>
        Create agent
      </button>
    </form>
  );
}

/** List, search, create, suspend or activate agents. */
export function Agents({ session }: { session: Session }) {
  const [search, setSearch] = useState("");
  const [offset, setOffset] = useState(0);
  const [creating, setCreating] = useState(false);
  const list = useAsync(() => get<{ agents: Agent[] }>(`/api/agents${query({ limit: PAGE, offset, search })}`), [offset, search]);
  const admin = can(session, "admin");
  return (
    <>
      <PageHead title="Agents">
        {admin ? (
          <button type="button" class="primary" aria-expanded={creating} onClick={() => setCreating(!creating)}>
            {creating ? "Close" : "New agent"}
          </button>
        ) : null}
      </PageHead>
      {creating ? <CreateAgent onCreated={list.reload} /> : null}
      <div class="toolbar">
        <Field label="Search by name, id or role" id="agent-search">
          <input
            id="agent-search"
            type="search"
            value={search}
            onInput={(e) => {
              setSearch(e.currentTarget.value);
              setOffset(0);
            }}
          />
        </Field>
      </div>
      <ErrorNotice error={list.error} />
      <div class="table-wrap">
        <table class="stack">
          <caption class="sr-only">Agents</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Key</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.agents ?? []).map((a) => (
              <tr key={a.id}>
                <td data-label="Name">
                  <a href={`#/agents/${encodeURIComponent(a.id)}`}>{a.name}</a>
                  <div class="muted small">{a.id}</div>
                </td>
                <td data-label="Role">{a.role}</td>
                <td data-label="Status">
                  <Badge value={a.status} />
                </td>
                <td data-label="Key">{a.keyAlgorithm}</td>
                <td data-label="Created">{time(a.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.data?.agents.length === 0 ? <p class="muted">No agents{search ? " match" : " yet"}.</p> : null}
      </div>
      <Pager offset={offset} limit={PAGE} count={list.data?.agents.length ?? 0} onChange={setOffset} />
    </>
  );
}

/** One agent: suspend or activate it, revoke its tokens, see its recent calls. */
export function AgentDetail({ session, id }: { session: Session; id: string }) {
  const agent = useAsync(() => get<Agent>(`/api/agents/${encodeURIComponent(id)}`), [id]);
  const calls = useAsync(() => get<{ records: AuditRecord[] }>(`/api/audit${query({ agentId: id, limit: 20 })}`), [id]);
  const [dialog, confirm] = useConfirm();
  const [error, setError] = useState<unknown>();
  const [message, setMessage] = useState<string>();
  const admin = can(session, "admin");
  const act = async (title: string, confirmLabel: string, path: string, done: (r: unknown) => string, danger = false) => {
    if (!(await confirm({ title, confirmLabel, danger })).ok) return;
    setError(undefined);
    try {
      setMessage(done(await api("POST", path)));
      agent.reload();
      calls.reload();
    } catch (err) {
      setError(err);
    }
  };
  const a = agent.data;
  return (
    <>
      <PageHead title={a ? `Agent ${a.name}` : "Agent"}>
        <a href="#/agents">← All agents</a>
      </PageHead>
      {dialog}
      <ErrorNotice error={agent.error ?? error} />
      {message ? (
        <p class="ok" role="status">
          {message}
        </p>
      ) : null}
      {a ? (
        <section class="panel">
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{a.id}</code>
            </dd>
            <dt>Role</dt>
            <dd>{a.role}</dd>
            <dt>Status</dt>
            <dd>
              <Badge value={a.status} />
            </dd>
            <dt>Key</dt>
            <dd>{a.keyAlgorithm}</dd>
            <dt>Created</dt>
            <dd>{time(a.createdAt)}</dd>
            <dt>Updated</dt>
            <dd>{time(a.updatedAt)}</dd>
          </dl>
          {admin ? (
            <div class="actions">
              {a.status === "active" ? (
                <button
                  type="button"
                  class="danger"
                  onClick={() =>
                    act(
                      `Suspend ${a.name}?`,
                      "Suspend",
                      `/api/agents/${encodeURIComponent(a.id)}/suspend`,
                      () => `${a.name} is suspended: its tokens fail at once.`,
                      true,
                    )
                  }
                >
                  Suspend
                </button>
              ) : (
                <button
                  type="button"
                  onClick={() => act(`Activate ${a.name}?`, "Activate", `/api/agents/${encodeURIComponent(a.id)}/activate`, () => `${a.name} is active again.`)}
                >
                  Activate
                </button>
              )}
              <button
                type="button"
                class="danger"
                onClick={() =>
                  act(
                    `Revoke every token of ${a.name}?`,
                    "Revoke tokens",
                    `/api/agents/${encodeURIComponent(a.id)}/revoke-tokens`,
                    (r) => `${(r as { revoked: number }).revoked} token(s) revoked.`,
                    true,
                  )
                }
              >
                Revoke tokens
              </button>
            </div>
          ) : null}
        </section>
      ) : null}
      <h2>Recent calls</h2>
      <ErrorNotice error={calls.error} />
      <AuditTable records={calls.data?.records ?? []} />
      <p>
        <a href={`#/audit?agentId=${encodeURIComponent(id)}`}>All of this agent's records in the audit trail →</a>
      </p>
    </>
  );
}
