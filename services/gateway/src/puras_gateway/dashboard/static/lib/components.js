// Small pieces every page uses. All text goes through Preact's escaping.
import { html, useCallback, useEffect, useRef, useState, createContext, useContext } from "./ui.js";

/** The API client of the signed-in session (see app.js). */
export const ClientContext = createContext(null);
/** {session, signOut} of the signed-in session. */
export const SessionContext = createContext(null);

export const useClient = () => useContext(ClientContext);
export const useSession = () => useContext(SessionContext);

/**
 * Runs an async loader and re-runs it when deps change; stale answers are dropped.
 * @returns {{data: any, error: any, loading: boolean, reload: () => void}}
 */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve()
      .then(() => load(ctrl.signal))
      .then(
        (data) => !ctrl.signal.aborted && setState({ data, error: null, loading: false }),
        (error) =>
          !ctrl.signal.aborted &&
          error?.name !== "AbortError" &&
          setState((s) => ({ data: s.data, error, loading: false })),
      );
    return () => ctrl.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** The API's own message, as it sent it; a 422's problems listed under it. */
export function ErrorBox({ error, onDismiss }) {
  if (!error) return null;
  const problems = error.body?.problems || error.body?.error?.problems;
  return html`<div class="error" role="alert">
    <p><strong>${error.status ? `Error ${error.status}` : "Error"}:</strong> ${error.message || String(error)}</p>
    ${Array.isArray(problems) && problems.length
      ? html`<ul>
          ${problems.map((p) => html`<li><code>${p.path || "/"}</code> ${p.message}</li>`)}
        </ul>`
      : null}
    ${onDismiss ? html`<button type="button" class="link" onClick=${onDismiss}>Dismiss</button>` : null}
  </div>`;
}

export function Loading({ label = "Loading…" }) {
  return html`<p class="muted" role="status" aria-live="polite">${label}</p>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

/** A progress bar with its figure in text, for uploads and pushes. */
export function Progress({ value, max, label }) {
  const pct = max ? Math.round((100 * value) / max) : 0;
  return html`<div class="progress">
    <progress value=${value} max=${max || 1} aria-label=${label || "progress"}></progress>
    <span aria-hidden="true">${pct} %</span>
  </div>`;
}

export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    } catch (_) {
      // No clipboard permission (plain http on another host): select the text instead.
      const sel = getSelection();
      const node = document.querySelector(`[data-copy-source="${CSS.escape(text)}"]`);
      if (sel && node) sel.selectAllChildren(node);
    }
  };
  return html`<button type="button" onClick=${copy} aria-live="polite">${done ? "Copied" : label}</button>`;
}

const STATUS_CLASS = {
  queued: "st-queued",
  running: "st-running",
  succeeded: "st-ok",
  failed: "st-bad",
  cancelled: "st-muted",
  timed_out: "st-bad",
};

export function StatusBadge({ status }) {
  return html`<span class=${"badge " + (STATUS_CLASS[status] || "")}>${status}</span>`;
}

/** Any JSON value, pretty-printed as text. */
export function JsonView({ value, label }) {
  return html`<pre class="json" aria-label=${label || "JSON"} tabindex="0">${JSON.stringify(value, null, 2)}</pre>`;
}

/**
 * A destructive action that asks once, inline (no modal to trap focus in): the first
 * press turns the button into "Confirm" and "Keep".
 */
export function ConfirmButton({ label, confirmLabel, onConfirm, disabled }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const yes = useRef(null);
  useEffect(() => {
    if (asking && yes.current) yes.current.focus();
  }, [asking]);
  if (!asking) {
    return html`<button type="button" class="danger" disabled=${disabled} onClick=${() => setAsking(true)}>${label}</button>`;
  }
  const go = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return html`<span class="confirm">
    <button type="button" class="danger" ref=${yes} disabled=${busy} onClick=${go}>${confirmLabel || `Yes, ${label.toLowerCase()}`}</button>
    <button type="button" disabled=${busy} onClick=${() => setAsking(false)}>Keep</button>
  </span>`;
}

/** Page heading that also names the document (screen readers and tabs). */
export function PageTitle({ children, actions }) {
  useEffect(() => {
    document.title = `${typeof children === "string" ? children : "Dashboard"} · Puras`;
  }, [children]);
  return html`<div class="page-head"><h1 tabindex="-1" id="page-title">${children}</h1>${actions ? html`<div class="actions">${actions}</div>` : null}</div>`;
}
