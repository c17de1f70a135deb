import { useState } from "preact/hooks";
import { api, can, get, post, type Session } from "../api";
import { Badge, ErrorNotice, Field, PageHead, time, useAsync, useConfirm } from "../ui";

interface Credential {
  tool: string;
  activeVersion: number | null;
  versions: { version: number; description: string | null; createdAt: string }[];
}

/** Adds a version; the secret field is write-only (never read back, cleared once sent). */
function AddVersion({ tools, onAdded }: { tools: string[]; onAdded: (c: Credential) => void }) {
  const [tool, setTool] = useState(tools[0] ?? "");
  const [secret, setSecret] = useState("");
  const [description, setDescription] = useState("");
  const [activate, setActivate] = useState(true);
  const [error, setError] = useState<unknown>();
  return (
    <form
      class="panel"
      aria-labelledby="add-credential-title"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(undefined);
        try {
          const created = await post<Credential>("/api/credentials", { tool, secret, activate, ...(description ? { description } : {}) });
          setSecret("");
          setDescription("");
          onAdded(created);
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h2 id="add-credential-title">Add a credential version</h2>
      <div class="row">
        <Field label="Tool" id="cred-tool">
          <input id="cred-tool" list="cred-tools" required value={tool} onInput={(e) => setTool(e.currentTarget.value)} />
          <datalist id="cred-tools">
            {tools.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </Field>
        <Field label="Secret" id="cred-secret" hint="Write-only: stored encrypted, never shown again.">
          <input id="cred-secret" type="password" autocomplete="new-password" required value={secret} onInput={(e) => setSecret(e.currentTarget.value)} />
        </Field>
        <Field label="Description" id="cred-description">
          <input id="cred-description" maxLength={256} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </Field>
      </div>
      <label class="inline">
        <input type="checkbox" checked={activate} onChange={(e) => setActivate(e.currentTarget.checked)} /> Activate it now
      </label>
      <ErrorNotice error={error} />
      <button type="submit" class="primary">
        Add version
      </button>
    </form>
  );
}

/** Credential metadata and versions per tool; add a version, activate one or roll back. */
export function Credentials({ session }: { session: Session }) {
  const list = useAsync(() => get<{ credentials: Credential[] }>("/api/credentials"), []);
  const tools = useAsync(() => get<{ tools: { tool: string }[] }>("/api/tools"), []);
  const [dialog, confirm] = useConfirm();
  const [error, setError] = useState<unknown>();
  const [message, setMessage] = useState<string>();
  const admin = can(session, "admin");
  const toolNames = [...new Set([...(list.data?.credentials ?? []).map((c) => c.tool), ...(tools.data?.tools ?? []).map((t) => t.tool)])].sort();
  return (
    <>
      <PageHead title="Credentials" />
      {dialog}
      {admin && toolNames.length > 0 ? (
        <AddVersion
          tools={toolNames}
          onAdded={(c) => {
            setMessage(`${c.tool}: version ${c.versions.at(-1)?.version} added${c.activeVersion === c.versions.at(-1)?.version ? " and active" : ""}.`);
            list.reload();
          }}
        />
      ) : null}
      <ErrorNotice error={list.error ?? error} />
      {message ? (
        <p class="ok" role="status">
          {message}
        </p>
      ) : null}
      {(list.data?.credentials ?? []).map((c) => (
        <section class="panel" key={c.tool} aria-labelledby={`cred-${c.tool}`} data-tool={c.tool}>
          <h2 id={`cred-${c.tool}`}>
            {c.tool} <span class="muted small">active: {c.activeVersion === null ? "none" : `v${c.activeVersion}`}</span>
          </h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Description</th>
                  <th scope="col">Added</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {[...c.versions].reverse().map((v) => (
                  <tr key={v.version}>
                    <td>
                      v{v.version} {v.version === c.activeVersion ? <Badge value="active" /> : null}
                    </td>
                    <td>{v.description ?? <span class="muted">—</span>}</td>
                    <td>{time(v.createdAt)}</td>
                    <td>
                      {admin && v.version !== c.activeVersion ? (
                        <button
                          type="button"
                          onClick={async () => {
                            const rollback = c.activeVersion !== null && v.version < c.activeVersion;
                            if (
                              !(
                                await confirm({
                                  title: `${rollback ? "Roll back" : "Activate"} ${c.tool} to v${v.version}?`,
                                  body: <p>Calls use this version from the next request.</p>,
                                  confirmLabel: rollback ? "Roll back" : "Activate",
                                  danger: rollback,
                                })
                              ).ok
                            )
                              return;
                            setError(undefined);
                            try {
                              await api("POST", `/api/credentials/${encodeURIComponent(c.tool)}/versions/${v.version}/activate`);
                              setMessage(`${c.tool}: v${v.version} is active.`);
                              list.reload();
                            } catch (err) {
                              setError(err);
                            }
                          }}
                        >
                          {c.activeVersion !== null && v.version < c.activeVersion ? "Roll back" : "Activate"} v{v.version}
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
