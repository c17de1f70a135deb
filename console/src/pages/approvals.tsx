import { useState } from "preact/hooks";
import { api, can, get, query, type Session } from "../api";
import { Badge, ErrorNotice, PageHead, time, useAsync, useConfirm } from "../ui";

/** An approval as `GET /api/approvals` shows it (the call's parameters already masked by the gateway). */
interface Approval {
  id: string;
  status: "pending" | "approved" | "denied" | "expired" | "executed" | "failed";
  agentId: string;
  tool: string;
  action: string;
  params?: unknown;
  /** Why the call was held. */
  reason?: string;
  rule?: { policyName: string; version: number; rule: number; ruleId?: string };
  correlationId?: string;
  requestedAt: string;
  expiresAt?: string;
  decidedAt?: string | null;
  decidedBy?: string | null;
  decisionReason?: string | null;
  /** After an approval: the executed call's `meta` (its own correlation id), or why it failed. */
  resultMeta?: { correlationId?: string };
  error?: { code: string; message: string };
}

const PAGE = 50;

/** The pending queue and its history; says the feature is off when the gateway has no approvals API. */
export function Approvals({ session }: { session: Session }) {
  const [tab, setTab] = useState<"pending" | "history">("pending");
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors.at(-1) ?? null;
  const list = useAsync(
    () =>
      get<{ approvals: Approval[]; nextCursor: string | null } | { error: { code: string } }>(
        `/api/approvals${query({ status: tab === "pending" ? "pending" : undefined, limit: PAGE, cursor })}`,
        { accept: [404] },
      ),
    [tab, cursor],
  );
  const [dialog, confirm] = useConfirm();
  const [error, setError] = useState<unknown>();
  /** What the last decision came to, as the gateway answered it. */
  const [outcome, setOutcome] = useState<Approval | undefined>();
  const approver = can(session, "approver");
  const off = list.data !== undefined && !("approvals" in list.data);
  const shown = list.data && "approvals" in list.data ? list.data.approvals.filter((a) => tab === "pending" || a.status !== "pending") : [];
  const decide = async (a: Approval, decision: "approve" | "deny") => {
    const answer = await confirm({
      title: `${decision === "approve" ? "Approve" : "Deny"} ${a.tool}:${a.action} for ${a.agentId}?`,
      body: (
        <>
          <p>
            {decision === "approve"
              ? "The gateway runs exactly this call (secrets masked here), checked again against policy."
              : "The call is not sent; the agent is told it was denied, with your reason."}
          </p>
          {a.params !== undefined ? <pre class="small">{JSON.stringify(a.params, null, 2)}</pre> : null}
        </>
      ),
      confirmLabel: decision === "approve" ? "Approve" : "Deny",
      danger: decision === "deny",
      reason: true,
    });
    if (!answer.ok) return;
    setError(undefined);
    setOutcome(undefined);
    try {
      setOutcome(await api<Approval>("POST", `/api/approvals/${encodeURIComponent(a.id)}/${decision}`, { body: { reason: answer.reason } }));
    } catch (err) {
      setError(err);
    }
    // Decided here or, if refused, most likely elsewhere: either way the list has changed.
    list.reload();
  };
  const switchTo = (next: "pending" | "history") => {
    setTab(next);
    setCursors([null]);
    setError(undefined);
    setOutcome(undefined);
  };
  return (
    <>
      <PageHead title="Approvals" />
      {dialog}
      {off ? (
        <p class="notice" role="status" data-testid="approvals-off">
          Human approvals are not enabled on this gateway.
        </p>
      ) : (
        <>
          <span role="radiogroup" aria-label="show" class="seg">
            <button type="button" role="radio" aria-checked={tab === "pending"} class={tab === "pending" ? "on" : ""} onClick={() => switchTo("pending")}>
              Pending
            </button>
            <button type="button" role="radio" aria-checked={tab === "history"} class={tab === "history" ? "on" : ""} onClick={() => switchTo("history")}>
              History
            </button>
          </span>
          <ErrorNotice error={list.error ?? error} />
          {outcome ? <DecisionOutcome a={outcome} /> : null}
          {shown.map((a) => (
            <section class="panel" key={a.id} aria-label={`${a.tool}:${a.action} for ${a.agentId}`}>
              <h2>
                {a.tool}:{a.action} <Badge value={a.status} />
              </h2>
              <p class="muted">
                agent <a href={`#/agents/${encodeURIComponent(a.agentId)}`}>{a.agentId}</a> · asked {time(a.requestedAt)}
                {a.status === "pending" && a.expiresAt ? ` · expires ${time(a.expiresAt)}` : ""}
                {a.correlationId ? (
                  <>
                    {" "}
                    ·{" "}
                    <a class="cid" href={`#/audit?correlationId=${encodeURIComponent(a.correlationId)}`}>
                      {a.correlationId}
                    </a>
                  </>
                ) : null}
              </p>
              {a.reason ? (
                <p>
                  Held because: {a.reason}
                  {a.rule ? ` (${a.rule.policyName} v${a.rule.version}, rule ${a.rule.ruleId ?? `#${a.rule.rule + 1}`})` : ""}
                </p>
              ) : null}
              {a.params !== undefined ? (
                <pre class="small" aria-label="the call, with secrets masked">
                  {JSON.stringify(a.params, null, 2)}
                </pre>
              ) : null}
              {a.resultMeta?.correlationId ? (
                <p>
                  The call ran:{" "}
                  <a class="cid" href={`#/audit?correlationId=${encodeURIComponent(a.resultMeta.correlationId)}`}>
                    {a.resultMeta.correlationId}
                  </a>
                </p>
              ) : null}
              {a.error ? (
                <p>
                  The call failed: <code>{a.error.code}</code> {a.error.message}
                </p>
              ) : null}
              {a.decidedBy ? (
                <p>
                  Decided by <strong>{a.decidedBy}</strong> {time(a.decidedAt)}
                  {a.decisionReason ? `: ${a.decisionReason}` : ""}
                </p>
              ) : null}
              {approver && a.status === "pending" ? (
                <div class="actions">
                  <button type="button" class="primary" onClick={() => decide(a, "approve")}>
                    Approve
                  </button>
                  <button type="button" class="danger" onClick={() => decide(a, "deny")}>
                    Deny
                  </button>
                </div>
              ) : null}
            </section>
          ))}
          {list.data && !off && shown.length === 0 ? <p class="muted">Nothing {tab === "pending" ? "waiting" : "decided yet"}.</p> : null}
          <nav class="pager" aria-label="pages">
            <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
              ← Newer
            </button>
            <span class="muted">page {cursors.length}</span>
            <button
              type="button"
              disabled={!(list.data && "nextCursor" in list.data && list.data.nextCursor)}
              onClick={() => list.data && "nextCursor" in list.data && list.data.nextCursor && setCursors([...cursors, list.data.nextCursor])}
            >
              Older →
            </button>
          </nav>
        </>
      )}
    </>
  );
}

/** What a decision came to: approved and executed (or failed), or denied. */
function DecisionOutcome({ a }: { a: Approval }) {
  const what = `${a.tool}:${a.action} for ${a.agentId}`;
  return (
    <p class="notice" role="status" data-testid="decision-outcome" data-status={a.status}>
      {a.status === "executed" ? (
        <>Approved and executed: {what}. </>
      ) : a.status === "failed" ? (
        <>
          Approved, but the call failed: {what} (<code>{a.error?.code}</code> {a.error?.message}).{" "}
        </>
      ) : a.status === "denied" ? (
        <>Denied: {what}; nothing was sent. </>
      ) : (
        <>
          {a.status}: {what}.{" "}
        </>
      )}
      {a.resultMeta?.correlationId ? (
        <>
          Correlation id{" "}
          <a class="cid" href={`#/audit?correlationId=${encodeURIComponent(a.resultMeta.correlationId)}`}>
            {a.resultMeta.correlationId}
          </a>
        </>
      ) : null}
    </p>
  );
}
