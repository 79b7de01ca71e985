// A job's events as they happen: the SSE stream of GET /v1/jobs/{id}/stream, resumed
// with Last-Event-ID when the connection drops (the API then sends nothing twice and
// loses nothing), and the list that shows them.
import { html, useEffect, useState } from "./ui.js";
import { JsonView } from "./components.js";
import { usd, when } from "./format.js";

const RETRY_MS = [500, 1000, 2000, 4000, 8000];

/**
 * Follows a job's stream until its `end` frame.
 * @returns {{events: any[], deltas: Record<string, string>, final: any, live: boolean, error: any}}
 *   `final` is the end frame's JobOut; `deltas` the model text of steps still streaming.
 */
export function useJobStream(client, jobId) {
  const [state, setState] = useState({ events: [], deltas: {}, final: null, live: true, error: null });
  useEffect(() => {
    const ctrl = new AbortController();
    let lastId = null;
    let failures = 0;
    const onEvent = ({ event, data, id }) => {
      failures = 0;
      if (event === "end") {
        setState((s) => ({ ...s, final: data, live: false, deltas: {} }));
        return;
      }
      if (event === "model_delta") {
        const step = String(data?.payload?.step ?? "");
        const text = String(data?.payload?.text ?? "");
        setState((s) => ({ ...s, deltas: { ...s.deltas, [step]: (s.deltas[step] || "") + text } }));
        return;
      }
      if (id) lastId = id;
      setState((s) => {
        // A delta's step is superseded by its whole response.
        let deltas = s.deltas;
        if (event === "model_response" && data?.payload?.step !== undefined) {
          deltas = { ...deltas };
          delete deltas[String(data.payload.step)];
        }
        return { ...s, events: [...s.events, data], deltas };
      });
    };
    const run = async () => {
      for (;;) {
        try {
          await client.stream(`/v1/jobs/${encodeURIComponent(jobId)}/stream`, {
            signal: ctrl.signal,
            lastEventId: lastId || undefined,
            onEvent,
          });
          return;
        } catch (e) {
          if (ctrl.signal.aborted || e?.name === "AbortError") return;
          // The API refused (404, 401): nothing to resume. A dropped connection is retried.
          if (e?.status || failures >= RETRY_MS.length) {
            setState((s) => ({ ...s, live: false, error: e }));
            return;
          }
          await new Promise((r) => setTimeout(r, RETRY_MS[failures++]));
          if (ctrl.signal.aborted) return;
        }
      }
    };
    run();
    return () => ctrl.abort();
  }, [client, jobId]);
  return state;
}

/** The job's cost as far as the events tell: the last `cost` event's running total. */
export function spentSoFar(events) {
  let spent = null;
  for (const ev of events) {
    if (ev?.type === "cost" && typeof ev.payload?.spent_micros === "number") spent = ev.payload.spent_micros;
  }
  return spent;
}

function textOf(content) {
  if (!Array.isArray(content)) return typeof content === "string" ? content : "";
  return content
    .filter((b) => b && b.type === "text")
    .map((b) => b.text)
    .join("\n");
}

function ModelResponse({ p }) {
  const text = textOf(p.content);
  const uses = Array.isArray(p.content) ? p.content.filter((b) => b && b.type === "tool_use") : [];
  return html`<div>
    ${text ? html`<p class="ev-text">${text}</p>` : null}
    ${uses.map((u) => html`<p class="muted">asks for <code>${u.name}</code></p>`)}
    ${p.stop_reason ? html`<p class="muted">stop: ${p.stop_reason}</p>` : null}
  </div>`;
}

function ToolCall({ p, result }) {
  return html`<details open=${!!result}>
    <summary><code>${p.name}</code>${result ? (result.is_error ? " — error" : " — done") : " — running…"}</summary>
    <${JsonView} value=${p.input} label=${`input of ${p.name}`} />
    ${result
      ? html`<div class=${result.is_error ? "ev-tool-error" : ""}>
          <p class="muted">result</p>
          ${textOf(result.content)
            ? html`<pre class="json" tabindex="0">${textOf(result.content)}</pre>`
            : html`<${JsonView} value=${result.content} label=${`result of ${p.name}`} />`}
        </div>`
      : null}
  </details>`;
}

function Body({ ev, results }) {
  const p = ev.payload || {};
  switch (ev.type) {
    case "log":
      return html`<pre class="ev-log" tabindex="0">${(p.lines || []).join("\n")}${p.truncated ? "\n… (truncated)" : ""}</pre>`;
    case "model_response":
      return html`<${ModelResponse} p=${p} />`;
    case "tool_call":
      return html`<${ToolCall} p=${p} result=${results.get(`${p.step}:${p.call_id}`)} />`;
    case "cost":
      return html`<span>${usd(p.billed_micros)} for step ${p.step} (${p.model}); ${usd(p.spent_micros)} so far</span>`;
    case "usage":
      return html`<span>${p.model}: ${p.input_tokens ?? 0} in, ${p.output_tokens ?? 0} out</span>`;
    case "agent_start":
      return html`<span>${p.model}${p.tools?.length ? ` with ${p.tools.join(", ")}` : ""}</span>`;
    case "queued":
      return html`<span>${p.skill}${p.held ? " (waiting for credit)" : ""}</span>`;
    case "started":
      return html`<span>attempt ${p.attempt}</span>`;
    case "succeeded":
    case "failed":
    case "cancelled":
      return p.error ? html`<pre class="ev-log" tabindex="0">${p.error}</pre>` : null;
    default:
      return Object.keys(p).length ? html`<${JsonView} value=${p} label=${ev.type} />` : null;
  }
}

/** The events in order; a tool call shows its result folded in (its own event is not repeated). */
export function EventList({ events, deltas }) {
  const results = new Map();
  for (const ev of events) {
    if (ev?.type === "tool_result") results.set(`${ev.payload?.step}:${ev.payload?.call_id}`, ev.payload);
  }
  const shown = events.filter((ev) => ev && ev.type !== "tool_result");
  const pending = Object.entries(deltas || {});
  return html`<ol class="events" aria-label="Events">
    ${shown.map(
      (ev) => html`<li key=${ev.id} class=${"ev ev-" + ev.type}>
        <div class="ev-head"><span class="ev-type">${ev.type}</span> <time class="muted" datetime=${ev.at}>${when(ev.at)}</time></div>
        <${Body} ev=${ev} results=${results} />
      </li>`,
    )}
    ${pending.map(
      ([step, text]) => html`<li key=${"delta-" + step} class="ev ev-model_delta">
        <div class="ev-head"><span class="ev-type">model (step ${step})</span> <span class="muted">writing…</span></div>
        <p class="ev-text">${text}</p>
      </li>`,
    )}
  </ol>`;
}
