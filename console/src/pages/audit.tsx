import { useEffect, useState } from "preact/hooks";
import { get, query } from "../api";
import { Badge, ErrorNotice, Field, PageHead, time, useAsync } from "../ui";

export interface AuditRecord {
  id: string;
  at: string;
  correlationId: string;
  agentId: string | null;
  tool: string | null;
  action: string | null;
  decision: "allow" | "deny" | "error";
  reason: string | null;
  status: number;
  latencyMs: number;
  upstreamMs: number | null;
  cache: string | null;
  attempts: number | null;
  paramsHash: string | null;
  operator?: string | null;
  /** Model tokens an LLM answer reported. */
  usage?: { promptTokens: number; completionTokens: number; totalTokens: number } | null;
}

const FILTERS = ["agentId", "tool", "decision", "kind", "operator", "from", "to", "correlationId"] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
const PAGE = 50;
const CSV_MAX = 10_000;
const LIVE_MS = 3000;

const toIso = (local: string | undefined) => (local ? new Date(local).toISOString() : undefined);
const filterQuery = (f: Filters) => ({ ...f, from: toIso(f.from), to: toIso(f.to) });

/** The records of the trail in a table; a correlation id opens every record that shares it. */
export function AuditTable({ records }: { records: AuditRecord[] }) {
  if (records.length === 0) return <p class="muted">No records.</p>;
  return (
    <div class="table-wrap">
      <table class="stack audit">
        <caption class="sr-only">Audit records</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Who</th>
            <th scope="col">Tool / action</th>
            <th scope="col">Decision</th>
            <th scope="col">Status</th>
            <th scope="col">Latency</th>
            <th scope="col">Correlation id</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.id} data-decision={r.decision}>
              <td data-label="Time">{time(r.at)}</td>
              <td data-label="Who">
                {r.operator ? <span class="operator-name">operator {r.operator}</span> : null}
                {r.agentId ? (
                  <div>
                    <a href={`#/agents/${encodeURIComponent(r.agentId)}`} class="small">
                      {r.agentId}
                    </a>
                  </div>
                ) : null}
              </td>
              <td data-label="Tool / action">
                {r.tool ? <strong>{r.tool}</strong> : null} {r.action}
              </td>
              <td data-label="Decision">
                <Badge value={r.decision} />
                {r.reason ? <div class="small muted">{r.reason}</div> : null}
              </td>
              <td data-label="Status">{r.status}</td>
              <td data-label="Latency">
                {r.latencyMs.toFixed(1)} ms{r.cache && r.cache !== "miss" ? <div class="small muted">cache {r.cache}</div> : null}
                {r.usage ? (
                  <div class="small muted" data-testid="usage" title={`${r.usage.promptTokens} prompt + ${r.usage.completionTokens} completion tokens`}>
                    {r.usage.totalTokens} tokens
                  </div>
                ) : null}
              </td>
              <td data-label="Correlation id">
                <a href={`#/audit?correlationId=${encodeURIComponent(r.correlationId)}`} class="cid" title="every record with this correlation id">
                  {r.correlationId}
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const CSV_COLUMNS: (keyof AuditRecord)[] = [
  "at",
  "correlationId",
  "operator",
  "agentId",
  "tool",
  "action",
  "decision",
  "reason",
  "status",
  "latencyMs",
  "upstreamMs",
  "cache",
  "attempts",
  "paramsHash",
];

/** One CSV cell; a leading = + - @ is defused so a spreadsheet never runs it as a formula. */
function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function exportCsv(filters: Filters): Promise<number> {
  const rows: AuditRecord[] = [];
  let cursor: string | null = null;
  do {
    const page: { records: AuditRecord[]; nextCursor: string | null } = await get(`/api/audit${query({ ...filterQuery(filters), limit: 1000, cursor })}`);
    rows.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor !== null && rows.length < CSV_MAX);
  const csv = [CSV_COLUMNS.join(","), ...rows.map((r) => CSV_COLUMNS.map((c) => csvCell(r[c])).join(","))].join("\r\n") + "\r\n";
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `audit-${new Date().toISOString().replaceAll(":", "-").slice(0, 19)}.csv`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return rows.length;
}

/** Filter the trail, follow a correlation id, page through, export CSV. */
export function Audit({ params }: { params: URLSearchParams }) {
  const initial: Filters = {};
  for (const f of FILTERS) {
    const v = params.get(f);
    if (v) initial[f] = v;
  }
  const key = params.toString();
  return <AuditView key={key} initial={initial} />;
}

function AuditView({ initial }: { initial: Filters }) {
  const [draft, setDraft] = useState<Filters>(initial);
  const [filters, setFilters] = useState<Filters>(initial);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [exported, setExported] = useState<string>();
  const [exportError, setExportError] = useState<unknown>();
  const cursor = cursors.at(-1) ?? null;
  const page = useAsync(
    () => get<{ records: AuditRecord[]; nextCursor: string | null }>(`/api/audit${query({ ...filterQuery(filters), limit: PAGE, cursor })}`),
    [JSON.stringify(filters), cursor],
  );
  const [live, setLive] = useState(false);
  // Live: the newest page reloads every few seconds, to watch calls as they come.
  useEffect(() => {
    if (!live || cursors.length > 1) return;
    const timer = setInterval(page.reload, LIVE_MS);
    return () => clearInterval(timer);
  }, [live, cursors.length, page.reload]);
  const set = (k: keyof Filters) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [k]: e.currentTarget.value });

  return (
    <>
      <PageHead title="Audit">
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live (newest page, every {LIVE_MS / 1000} s)
        </label>
        <button
          type="button"
          onClick={async () => {
            setExportError(undefined);
            try {
              setExported(`${await exportCsv(filters)} records exported.`);
            } catch (err) {
              setExportError(err);
            }
          }}
        >
          Export CSV
        </button>
      </PageHead>
      {filters.correlationId ? (
        <p class="notice" role="status">
          Following correlation id{" "}
          <code class="cid" data-testid="following">
            {filters.correlationId}
          </code>{" "}
          across its records. <a href="#/audit">Show all</a>
        </p>
      ) : null}
      <form
        class="filters"
        aria-label="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(Object.fromEntries(Object.entries(draft).filter(([, v]) => v)));
          setCursors([null]);
        }}
      >
        <Field label="Agent id" id="f-agent">
          <input id="f-agent" value={draft.agentId ?? ""} onInput={set("agentId")} />
        </Field>
        <Field label="Tool" id="f-tool">
          <input id="f-tool" value={draft.tool ?? ""} onInput={set("tool")} />
        </Field>
        <Field label="Decision" id="f-decision">
          <select id="f-decision" value={draft.decision ?? ""} onChange={set("decision")}>
            <option value="">any</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
            <option value="error">error</option>
          </select>
        </Field>
        <Field label="Kind" id="f-kind">
          <select id="f-kind" value={draft.kind ?? ""} onChange={set("kind")}>
            <option value="">all</option>
            <option value="call">agents' calls</option>
            <option value="admin">operators' changes</option>
          </select>
        </Field>
        <Field label="Operator" id="f-operator">
          <input id="f-operator" value={draft.operator ?? ""} onInput={set("operator")} />
        </Field>
        <Field label="From" id="f-from">
          <input id="f-from" type="datetime-local" value={draft.from ?? ""} onInput={set("from")} />
        </Field>
        <Field label="To" id="f-to">
          <input id="f-to" type="datetime-local" value={draft.to ?? ""} onInput={set("to")} />
        </Field>
        <Field label="Correlation id" id="f-cid">
          <input id="f-cid" value={draft.correlationId ?? ""} onInput={set("correlationId")} />
        </Field>
        <div class="actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
        </div>
      </form>
      <ErrorNotice error={page.error ?? exportError} />
      {exported ? (
        <p class="ok" role="status">
          {exported}
        </p>
      ) : null}
      <AuditTable records={page.data?.records ?? []} />
      <nav class="pager" aria-label="pages">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Newer
        </button>
        <span class="muted">page {cursors.length}</span>
        <button type="button" disabled={!page.data?.nextCursor} onClick={() => page.data?.nextCursor && setCursors([...cursors, page.data.nextCursor])}>
          Older →
        </button>
      </nav>
    </>
  );
}
