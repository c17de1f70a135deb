import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";

/** Loads something once per change of `deps`; `reload` fetches again. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((n) => n + 1), []) };
}

/** The gateway's message, code and correlation id (which links to its audit records). */
export function ErrorNotice({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  if (error instanceof ApiError) {
    return (
      <div class="error" role="alert">
        <strong>{error.body.message}</strong>
        <div class="muted">
          <code>{error.body.code}</code> · HTTP {error.status}
          {error.body.correlationId ? (
            <>
              {" "}
              · correlation id{" "}
              <a href={`#/audit?correlationId=${encodeURIComponent(error.body.correlationId)}`}>
                <code class="cid">{error.body.correlationId}</code>
              </a>
            </>
          ) : null}
        </div>
      </div>
    );
  }
  return (
    <div class="error" role="alert">
      <strong>{error instanceof Error ? error.message : String(error)}</strong>
    </div>
  );
}

/** A labelled control with its error shown right beside it. */
export function Field({
  label,
  id,
  error,
  hint,
  children,
}: {
  label: string;
  id: string;
  error?: string | undefined;
  hint?: string;
  children: ComponentChildren;
}) {
  return (
    <div class={`field${error ? " invalid" : ""}`}>
      <label for={id}>{label}</label>
      {children}
      {hint ? <div class="hint">{hint}</div> : null}
      {error ? (
        <div class="field-error" id={`${id}-error`} role="alert">
          {error}
        </div>
      ) : null}
    </div>
  );
}

interface ConfirmRequest {
  title: string;
  body?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  /** Ask for a reason (required when true). */
  reason?: boolean;
  resolve: (answer: { ok: boolean; reason: string }) => void;
}

/** A modal confirmation (a real <dialog>: focus is trapped, Escape cancels). */
export function useConfirm(): [ComponentChildren, (r: Omit<ConfirmRequest, "resolve">) => Promise<{ ok: boolean; reason: string }>] {
  const [request, setRequest] = useState<ConfirmRequest | undefined>();
  const [reason, setReason] = useState("");
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    if (request !== undefined && dialog.current && !dialog.current.open) dialog.current.showModal();
  }, [request]);
  const close = (ok: boolean) => {
    request?.resolve({ ok, reason });
    dialog.current?.close();
    setRequest(undefined);
    setReason("");
  };
  const element =
    request === undefined ? null : (
      <dialog
        ref={dialog}
        class="confirm"
        aria-labelledby="confirm-title"
        onCancel={(e) => {
          e.preventDefault();
          close(false);
        }}
      >
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            close(true);
          }}
        >
          <h2 id="confirm-title">{request.title}</h2>
          {request.body ? <div class="confirm-body">{request.body}</div> : null}
          {request.reason ? (
            <Field label="Reason" id="confirm-reason">
              <input id="confirm-reason" required value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
            </Field>
          ) : null}
          <div class="actions">
            <button type="button" onClick={() => close(false)}>
              Cancel
            </button>
            <button type="submit" class={request.danger ? "danger" : "primary"}>
              {request.confirmLabel}
            </button>
          </div>
        </form>
      </dialog>
    );
  const ask = useCallback((r: Omit<ConfirmRequest, "resolve">) => new Promise<{ ok: boolean; reason: string }>((resolve) => setRequest({ ...r, resolve })), []);
  return [element, ask];
}

/** Previous / next for offset paging. */
export function Pager({ offset, limit, count, onChange }: { offset: number; limit: number; count: number; onChange: (offset: number) => void }) {
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>
        ← Previous
      </button>
      <span class="muted">{count === 0 ? (offset === 0 ? "" : "no more") : `${offset + 1}–${offset + count}`}</span>
      <button type="button" disabled={count < limit} onClick={() => onChange(offset + limit)}>
        Next →
      </button>
    </nav>
  );
}

/** A secret the gateway hands over once: copy or download it now. It is never drawn on the page. */
export function ShownOnce({ label, value, filename, onDone }: { label: string; value: string; filename?: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  const download = () => {
    const url = URL.createObjectURL(new Blob([value], { type: filename?.endsWith(".json") ? "application/json" : "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = filename ?? "secret.txt";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <div class="once" role="status">
      <p>
        <strong>{label}</strong> It is shown once and never stored by the console.
      </p>
      <div class="actions">
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard?.writeText(value).then(() => setCopied(true));
          }}
        >
          {copied ? "Copied" : "Copy"}
        </button>
        {filename ? (
          <button type="button" class="primary" onClick={download}>
            Download {filename}
          </button>
        ) : null}
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

export function Badge({ value }: { value: string }) {
  return <span class={`badge b-${value.replace(/[^a-z0-9_-]/gi, "")}`}>{value}</span>;
}

export const time = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString(undefined, { hour12: false }) : "—");

/** Page title plus an optional slot on its right. */
export function PageHead({ title, children }: { title: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · 4Runr console`;
  }, [title]);
  return (
    <header class="page-head">
      <h1>{title}</h1>
      <div class="page-actions">{children}</div>
    </header>
  );
}
