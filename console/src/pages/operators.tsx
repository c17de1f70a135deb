import { useState } from "preact/hooks";
import { api, can, get, post, type Role, type Session } from "../api";
import { Badge, ErrorNotice, Field, PageHead, ShownOnce, time, useAsync, useConfirm } from "../ui";

interface OperatorView {
  id: string;
  name: string;
  role: Role;
  status: "active" | "disabled";
  createdAt: string;
  keyRotatedAt: string;
}

interface SessionView {
  handle: string;
  operator: { id: string; name: string };
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  current: boolean;
}

/** Named operator keys: create (key handed over once), disable or enable, rotate; who is signed in. */
export function Operators({ session }: { session: Session }) {
  const list = useAsync(() => get<{ operators: OperatorView[] }>("/api/operators"), []);
  const sessions = useAsync(() => get<{ sessions: SessionView[] }>("/api/operators/sessions"), []);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [key, setKey] = useState<{ label: string; value: string; filename: string }>();
  const [error, setError] = useState<unknown>();
  const [dialog, confirm] = useConfirm();
  const admin = can(session, "admin");
  const act = async (o: OperatorView, what: "disable" | "enable" | "rotate") => {
    const titles = {
      disable: `Disable ${o.name}? Its key and sessions stop working at once.`,
      enable: `Enable ${o.name}?`,
      rotate: `Rotate ${o.name}'s key? The old key and its sessions stop working at once.`,
    };
    if (!(await confirm({ title: titles[what], confirmLabel: what[0]!.toUpperCase() + what.slice(1), danger: what !== "enable" })).ok) return;
    setError(undefined);
    try {
      const r = await post<OperatorView & { key?: string }>(`/api/operators/${encodeURIComponent(o.id)}/${what}`);
      sessions.reload();
      if (r.key) setKey({ label: `${o.name}'s new key is ready: copy it or download it now.`, value: r.key, filename: `${o.name}.operator-key.txt` });
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <PageHead title="Operators" />
      {dialog}
      <p class="muted">
        You are <strong>{session.operator.name}</strong> ({session.operator.role}). Viewers read everything and change nothing; approvers also decide approvals;
        admins do everything.
      </p>
      {key ? <ShownOnce label={key.label} value={key.value} filename={key.filename} onDone={() => setKey(undefined)} /> : null}
      {admin ? (
        <form
          class="panel"
          aria-labelledby="new-operator-title"
          onSubmit={async (e) => {
            e.preventDefault();
            setError(undefined);
            try {
              const created = await post<OperatorView & { key: string }>("/api/operators", { name, role });
              setKey({
                label: `${created.name}'s key is ready: copy it or download it now.`,
                value: created.key,
                filename: `${created.name}.operator-key.txt`,
              });
              setName("");
              list.reload();
            } catch (err) {
              setError(err);
            }
          }}
        >
          <h2 id="new-operator-title">New operator</h2>
          <div class="row">
            <Field label="Name" id="op-name" hint="Lower-case letters, digits, '.', '_' or '-'.">
              <input id="op-name" required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </Field>
            <Field label="Role" id="op-role">
              <select id="op-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
                <option value="viewer">viewer</option>
                <option value="approver">approver</option>
                <option value="admin">admin</option>
              </select>
            </Field>
          </div>
          <button type="submit" class="primary">
            Create operator
          </button>
        </form>
      ) : null}
      <ErrorNotice error={list.error ?? error} />
      <div class="table-wrap">
        <table>
          <caption class="sr-only">Operators</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Key rotated</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <td>
                bootstrap-admin <div class="muted small">the admin key (GATEWAY_ADMIN_KEY or DATA_DIR/admin.key)</div>
              </td>
              <td>
                <Badge value="admin" />
              </td>
              <td>
                <Badge value="active" />
              </td>
              <td>—</td>
              <td />
            </tr>
            {(list.data?.operators ?? []).map((o) => (
              <tr key={o.id}>
                <td>
                  {o.name}
                  <div class="muted small">{o.id}</div>
                </td>
                <td>
                  <Badge value={o.role} />
                </td>
                <td>
                  <Badge value={o.status} />
                </td>
                <td>{time(o.keyRotatedAt)}</td>
                <td>
                  {admin ? (
                    <div class="actions">
                      {o.status === "active" ? (
                        <button type="button" class="danger" onClick={() => act(o, "disable")}>
                          Disable
                        </button>
                      ) : (
                        <button type="button" onClick={() => act(o, "enable")}>
                          Enable
                        </button>
                      )}
                      <button type="button" onClick={() => act(o, "rotate")}>
                        Rotate key
                      </button>
                    </div>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Signed in now</h2>
      <ErrorNotice error={sessions.error} />
      <div class="table-wrap">
        <table class="stack">
          <caption class="sr-only">Console sessions</caption>
          <thead>
            <tr>
              <th scope="col">Operator</th>
              <th scope="col">Signed in</th>
              <th scope="col">Last seen</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(sessions.data?.sessions ?? []).map((s) => (
              <tr key={s.handle}>
                <td data-label="Operator">
                  {s.operator.name} {s.current ? <Badge value="you" /> : null}
                  <div class="muted small">session {s.handle}</div>
                </td>
                <td data-label="Signed in">{time(s.createdAt)}</td>
                <td data-label="Last seen">{time(s.lastSeenAt)}</td>
                <td data-label="Expires">{time(s.expiresAt)}</td>
                <td data-label="">
                  {admin && !s.current ? (
                    <button
                      type="button"
                      class="danger"
                      onClick={async () => {
                        if (!(await confirm({ title: `End ${s.operator.name}'s session ${s.handle}?`, confirmLabel: "End session", danger: true })).ok) return;
                        setError(undefined);
                        try {
                          await api("DELETE", `/api/operators/sessions/${s.handle}`);
                          sessions.reload();
                        } catch (err) {
                          setError(err);
                        }
                      }}
                    >
                      End session
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
