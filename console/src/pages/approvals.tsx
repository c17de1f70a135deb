import { useState } from "preact/hooks";
import { api, can, get, query, type Session } from "../api";
import { Badge, ErrorNotice, PageHead, time, useAsync, useConfirm } from "../ui";

interface Approval {
  id: string;
  status: string;
  agentId: string;
  tool: string;
  action: string;
  /** The call as the gateway shows it: secrets already redacted. */
  params?: unknown;
  reason?: string | null;
  decidedBy?: string | null;
  createdAt: string;
  decidedAt?: string | null;
  correlationId?: string;
}

/** The pending queue and its history; shows that the feature is off when the gateway has no approvals API. */
export function Approvals({ session }: { session: Session }) {
  const [status, setStatus] = useState<"pending" | "decided">("pending");
  const list = useAsync(() => get<{ approvals: Approval[] } | { error: { code: string } }>(`/api/approvals${query({ status: status === "pending" ? "pending" : undefined })}`, { accept: [404] }), [status]);
  const [dialog, confirm] = useConfirm();
  const [error, setError] = useState<unknown>();
  const approver = can(session, "approver");
  const off = list.data !== undefined && !("approvals" in list.data);
  const decide = async (a: Approval, decision: "approve" | "deny") => {
    const answer = await confirm({ title: `${decision === "approve" ? "Approve" : "Deny"} ${a.tool}:${a.action} for ${a.agentId}?`, confirmLabel: decision === "approve" ? "Approve" : "Deny", danger: decision === "deny", reason: true });
    if (!answer.ok) return;
    setError(undefined);
    try {
      await api("POST", `/api/approvals/${encodeURIComponent(a.id)}/${decision}`, { body: { reason: answer.reason } });
      list.reload();
    } catch (err) {
      setError(err);
    }
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
            <button type="button" role="radio" aria-checked={status === "pending"} class={status === "pending" ? "on" : ""} onClick={() => setStatus("pending")}>Pending</button>
            <button type="button" role="radio" aria-checked={status === "decided"} class={status === "decided" ? "on" : ""} onClick={() => setStatus("decided")}>History</button>
          </span>
          <ErrorNotice error={list.error ?? error} />
          {list.data && "approvals" in list.data
            ? list.data.approvals.map((a) => (
                <section class="panel" key={a.id}>
                  <h2>
                    {a.tool}:{a.action} <Badge value={a.status} />
                  </h2>
                  <p class="muted">
                    agent <a href={`#/agents/${encodeURIComponent(a.agentId)}`}>{a.agentId}</a> · {time(a.createdAt)}
                    {a.correlationId ? <> · <a class="cid" href={`#/audit?correlationId=${encodeURIComponent(a.correlationId)}`}>{a.correlationId}</a></> : null}
                  </p>
                  {a.params !== undefined ? <pre class="small">{JSON.stringify(a.params, null, 2)}</pre> : null}
                  {a.decidedBy ? <p>Decided by {a.decidedBy} {time(a.decidedAt)}{a.reason ? `: ${a.reason}` : ""}</p> : null}
                  {approver && a.status === "pending" ? (
                    <div class="actions">
                      <button type="button" class="primary" onClick={() => decide(a, "approve")}>Approve</button>
                      <button type="button" class="danger" onClick={() => decide(a, "deny")}>Deny</button>
                    </div>
                  ) : null}
                </section>
              ))
            : null}
          {list.data && "approvals" in list.data && list.data.approvals.length === 0 ? <p class="muted">Nothing {status === "pending" ? "waiting" : "decided yet"}.</p> : null}
        </>
      )}
    </>
  );
}
