import { useMemo, useState } from "preact/hooks";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { api, ApiError, can, get, type Session } from "../api";
import { diffLines } from "../diff";
import { Badge, ErrorNotice, Field, PageHead, Pager, time, useAsync, useConfirm } from "../ui";

interface PolicyDocument {
  name: string;
  description?: string;
  enabled?: boolean;
  subject: { all: true } | { role: string } | { agentId: string };
  rules: unknown[];
}
interface PolicyView {
  id: string;
  name: string;
  version: number;
  hash: string;
  createdAt: string;
  updatedAt: string;
  policy: PolicyDocument;
}
interface PolicyDetailView extends PolicyView {
  versions: { version: number; hash: string; createdAt: string; policy: PolicyDocument }[];
}

type Format = "yaml" | "json";
const PAGE = 25;
const render = (doc: unknown, format: Format) => (format === "yaml" ? toYaml(doc) : JSON.stringify(doc, null, 2) + "\n");
const subjectText = (s: PolicyDocument["subject"]) => ("all" in s ? "every agent" : "role" in s ? `role ${s.role}` : `agent ${s.agentId}`);

const EXAMPLE: PolicyDocument = {
  name: "new-policy",
  description: "What this policy is for",
  subject: { role: "researcher" },
  rules: [{ effect: "allow", scopes: ["serpapi:search"], rateLimit: { perSecond: 5, burst: 10 } }],
};

/** The line of the editor's text where the field the gateway named is written, when it can be found. */
function lineOf(text: string, field: string): number | undefined {
  const last = field
    .split(/[.[\]]/)
    .filter((p) => p && !/^\d+$/.test(p))
    .at(-1);
  if (!last) return undefined;
  const index = text.split("\n").findIndex((line) => new RegExp(`^\\s*(-\\s*)?"?${last.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"?\\s*:`).test(line));
  return index < 0 ? undefined : index + 1;
}

/** A YAML/JSON editor that saves through the gateway and shows its error at the field it names. */
function PolicyEditor({
  initial,
  onSave,
  saveLabel,
  readOnly,
}: {
  initial: PolicyDocument;
  onSave: (text: string, format: Format) => Promise<void>;
  saveLabel: string;
  readOnly: boolean;
}) {
  const [format, setFormat] = useState<Format>("yaml");
  const [text, setText] = useState(() => render(initial, "yaml"));
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState<string>();
  const field = error instanceof ApiError ? (error.body.details?.field as string | undefined) : undefined;
  const line = field ? lineOf(text, field) : undefined;
  const switchTo = (next: Format) => {
    try {
      setText(render(format === "yaml" ? parseYaml(text) : JSON.parse(text), next));
      setFormat(next);
    } catch {
      setError(new Error(`fix the ${format.toUpperCase()} before switching format`));
    }
  };
  return (
    <form
      class="editor"
      aria-label="policy document"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(undefined);
        setSaved(undefined);
        try {
          await onSave(text, format);
          setSaved("Saved: it applies from the next request.");
        } catch (err) {
          setError(err);
        }
      }}
    >
      <div class="toolbar">
        <span role="radiogroup" aria-label="format" class="seg">
          {(["yaml", "json"] as const).map((f) => (
            <button key={f} type="button" role="radio" aria-checked={format === f} class={format === f ? "on" : ""} onClick={() => format !== f && switchTo(f)}>
              {f.toUpperCase()}
            </button>
          ))}
        </span>
      </div>
      <div class={`field${field ? " invalid" : ""}`}>
        <label for="policy-text">Policy ({format.toUpperCase()})</label>
        <textarea
          id="policy-text"
          class="code"
          rows={18}
          spellcheck={false}
          readOnly={readOnly}
          value={text}
          aria-invalid={field ? true : undefined}
          aria-describedby={field ? "policy-field-error" : undefined}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        {field ? (
          <div class="field-error" id="policy-field-error" role="alert" data-testid="policy-field-error">
            <code>{field}</code>
            {line ? ` (line ${line})` : ""}: {(error as ApiError).message.replace(/^invalid policy: /, "").replace(`${field} `, "")}
          </div>
        ) : null}
      </div>
      {field ? null : <ErrorNotice error={error} />}
      {saved ? (
        <p class="ok" role="status">
          {saved}
        </p>
      ) : null}
      {readOnly ? null : (
        <button type="submit" class="primary">
          {saveLabel}
        </button>
      )}
    </form>
  );
}

const sendPolicy = (method: string, path: string, text: string, format: Format) =>
  api<PolicyView>(method, path, { body: text, contentType: format === "yaml" ? "application/yaml" : "application/json" });

/** Every policy with its version; create one; explain a call. */
export function Policies({ session }: { session: Session }) {
  const list = useAsync(() => get<{ policies: PolicyView[] }>("/api/policies"), []);
  const [creating, setCreating] = useState(false);
  const [offset, setOffset] = useState(0);
  const admin = can(session, "admin");
  const shown = (list.data?.policies ?? []).slice(offset, offset + PAGE);
  return (
    <>
      <PageHead title="Policies">
        {admin ? (
          <button type="button" class="primary" aria-expanded={creating} onClick={() => setCreating(!creating)}>
            {creating ? "Close" : "New policy"}
          </button>
        ) : null}
      </PageHead>
      {creating ? (
        <section class="panel">
          <h2>New policy</h2>
          <PolicyEditor
            initial={EXAMPLE}
            saveLabel="Create policy"
            readOnly={false}
            onSave={async (text, format) => {
              const created = await sendPolicy("POST", "/api/policies", text, format);
              location.hash = `#/policies/${encodeURIComponent(created.id)}`;
            }}
          />
        </section>
      ) : null}
      <ErrorNotice error={list.error} />
      <div class="table-wrap">
        <table>
          <caption class="sr-only">Policies</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Applies to</th>
              <th scope="col">Rules</th>
              <th scope="col">Version</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((p) => (
              <tr key={p.id}>
                <td>
                  <a href={`#/policies/${encodeURIComponent(p.id)}`}>{p.name}</a> {p.policy.enabled === false ? <Badge value="disabled" /> : null}
                  {p.policy.description ? <div class="muted small">{p.policy.description}</div> : null}
                </td>
                <td>{subjectText(p.policy.subject)}</td>
                <td>{p.policy.rules.length}</td>
                <td>v{p.version}</td>
                <td>{time(p.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager offset={offset} limit={PAGE} count={shown.length} onChange={setOffset} />
      <Explain />
    </>
  );
}

/** One policy: edit, versions, diff, roll back. */
export function PolicyDetail({ session, id }: { session: Session; id: string }) {
  const policy = useAsync(() => get<PolicyDetailView>(`/api/policies/${encodeURIComponent(id)}`), [id]);
  const [dialog, confirm] = useConfirm();
  const [from, setFrom] = useState<number>();
  const [to, setTo] = useState<number>();
  const [error, setError] = useState<unknown>();
  const admin = can(session, "admin");
  const p = policy.data;
  const versions = p?.versions ?? [];
  const left = versions.find((v) => v.version === (from ?? Math.max(1, (p?.version ?? 1) - 1)));
  const right = versions.find((v) => v.version === (to ?? p?.version));
  const diff = useMemo(() => (left && right ? diffLines(toYaml(left.policy), toYaml(right.policy)) : []), [left, right]);

  return (
    <>
      <PageHead title={p ? `Policy ${p.name}` : "Policy"}>
        <a href="#/policies">← All policies</a>
      </PageHead>
      {dialog}
      <ErrorNotice error={policy.error ?? error} />
      {p ? (
        <>
          <p class="muted">
            Version {p.version} · {subjectText(p.policy.subject)} · updated {time(p.updatedAt)} · <code>{p.id}</code>
          </p>
          <PolicyEditor
            key={`${p.id}@${p.version}`}
            initial={p.policy}
            saveLabel="Save as a new version"
            readOnly={!admin}
            onSave={async (text, format) => {
              await sendPolicy("PUT", `/api/policies/${encodeURIComponent(p.id)}`, text, format);
              policy.reload();
            }}
          />
          <section class="panel" aria-labelledby="versions-title">
            <h2 id="versions-title">Versions</h2>
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Saved</th>
                    <th scope="col">Hash</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {[...versions].reverse().map((v) => (
                    <tr key={v.version}>
                      <td>
                        v{v.version} {v.version === p.version ? <Badge value="current" /> : null}
                      </td>
                      <td>{time(v.createdAt)}</td>
                      <td>
                        <code class="small">{v.hash.slice(0, 12)}</code>
                      </td>
                      <td>
                        {admin && v.version !== p.version ? (
                          <button
                            type="button"
                            onClick={async () => {
                              if (
                                !(
                                  await confirm({
                                    title: `Roll back ${p.name} to v${v.version}?`,
                                    body: <p>This saves v{v.version}'s document as a new version; it applies from the next request.</p>,
                                    confirmLabel: "Roll back",
                                    danger: true,
                                  })
                                ).ok
                              )
                                return;
                              setError(undefined);
                              try {
                                await api("PUT", `/api/policies/${encodeURIComponent(p.id)}`, { body: v.policy });
                                policy.reload();
                              } catch (err) {
                                setError(err);
                              }
                            }}
                          >
                            Roll back to v{v.version}
                          </button>
                        ) : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <h3>Diff</h3>
            <div class="row">
              <Field label="From version" id="diff-from">
                <select id="diff-from" value={left?.version} onChange={(e) => setFrom(Number(e.currentTarget.value))}>
                  {versions.map((v) => (
                    <option key={v.version} value={v.version}>
                      v{v.version}
                    </option>
                  ))}
                </select>
              </Field>
              <Field label="To version" id="diff-to">
                <select id="diff-to" value={right?.version} onChange={(e) => setTo(Number(e.currentTarget.value))}>
                  {versions.map((v) => (
                    <option key={v.version} value={v.version}>
                      v{v.version}
                    </option>
                  ))}
                </select>
              </Field>
            </div>
            <pre class="diff" aria-label={`changes from v${left?.version} to v${right?.version}`}>
              {diff.map((d, i) => (
                <div key={i} class={`d-${d.kind}`}>
                  {d.kind === "add" ? "+ " : d.kind === "remove" ? "- " : "  "}
                  {d.text}
                </div>
              ))}
            </pre>
          </section>
        </>
      ) : null}
    </>
  );
}

interface Explanation {
  decision: "allow" | "deny";
  reason?: string;
  message?: string;
  rule?: { policyName: string; version: number; rule: number; ruleId?: string };
  trace: { policyName: string; version: number; rule: number; ruleId?: string; effect: string; outcome: string; why: string }[];
  limits?: { kind: string; limit: number; remaining: number | undefined; resetsAt?: string; rule: { policyName: string } }[];
}

/** Decides a call without making it or counting it. */
function Explain() {
  const [form, setForm] = useState({ agentId: "", tool: "serpapi", action: "search", params: '{"q": "coffee"}', scopes: "", intent: "" });
  const [result, setResult] = useState<Explanation>();
  const [error, setError] = useState<unknown>();
  const [paramsError, setParamsError] = useState<string>();
  const set = (k: keyof typeof form) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [k]: e.currentTarget.value });
  return (
    <section class="panel" aria-labelledby="explain-title">
      <h2 id="explain-title">Explain a call (dry run)</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          setResult(undefined);
          let params: unknown;
          try {
            params = form.params.trim() === "" ? {} : JSON.parse(form.params);
            setParamsError(undefined);
          } catch (err) {
            setParamsError(`not valid JSON: ${(err as Error).message}`);
            return;
          }
          const scopes = form.scopes.split(/[\s,]+/).filter(Boolean);
          try {
            setResult(
              await api<Explanation>("POST", "/api/policies/explain", {
                body: {
                  agentId: form.agentId,
                  tool: form.tool,
                  action: form.action,
                  params,
                  ...(scopes.length ? { scopes } : {}),
                  ...(form.intent ? { intent: form.intent } : {}),
                },
              }),
            );
          } catch (err) {
            setError(err);
          }
        }}
      >
        <div class="row">
          <Field label="Agent id" id="x-agent">
            <input id="x-agent" required value={form.agentId} onInput={set("agentId")} />
          </Field>
          <Field label="Tool" id="x-tool">
            <input id="x-tool" required value={form.tool} onInput={set("tool")} />
          </Field>
          <Field label="Action" id="x-action">
            <input id="x-action" required value={form.action} onInput={set("action")} />
          </Field>
        </div>
        <div class="row">
          <Field label="Params (JSON)" id="x-params" error={paramsError}>
            <textarea id="x-params" class="code" rows={3} value={form.params} onInput={set("params")} />
          </Field>
          <Field label="Token scopes (optional)" id="x-scopes" hint="Comma-separated; empty: the policy alone decides.">
            <input id="x-scopes" value={form.scopes} onInput={set("scopes")} />
          </Field>
          <Field label="Intent (optional)" id="x-intent">
            <input id="x-intent" value={form.intent} onInput={set("intent")} />
          </Field>
        </div>
        <button type="submit" class="primary">
          Explain
        </button>
      </form>
      <ErrorNotice error={error} />
      {result ? (
        <div class="explain" role="status" data-testid="explain-result">
          <p class="big">
            <Badge value={result.decision} /> {result.reason ? <code>{result.reason}</code> : null} {result.message}
          </p>
          {result.rule ? (
            <p>
              Decided by {result.rule.policyName} v{result.rule.version}, rule {result.rule.ruleId ?? `#${result.rule.rule + 1}`}
            </p>
          ) : null}
          {result.limits?.length ? (
            <ul class="plain">
              {result.limits.map((l, i) => (
                <li key={i}>
                  {l.kind} of {l.rule.policyName}: {l.remaining ?? "?"} of {l.limit} left{l.resetsAt ? `, resets ${time(l.resetsAt)}` : ""}
                </li>
              ))}
            </ul>
          ) : null}
          <h3>Matched rules</h3>
          <ul class="plain trace">
            {result.trace.map((t, i) => (
              <li key={i}>
                <Badge value={t.outcome} /> {t.policyName} v{t.version} rule {t.ruleId ?? `#${t.rule + 1}`} ({t.effect}): {t.why}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}
