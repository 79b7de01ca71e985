// The playground: pick a skill of the active deployment, fill the form its input_schema
// describes (SPEC K6), run it streamed, and see the result against its output_schema.
import { html, useEffect, useRef, useState } from "../lib/ui.js";
import { useClient, useAsync, ErrorBox, Loading, Empty, PageTitle, StatusBadge, JsonView } from "../lib/components.js";
import { href, navigate } from "../lib/router.js";
import { SchemaField } from "../lib/widgets.js";
import { describe, fieldId, initialInputs, propertiesOf, setIn, widgetFor } from "../lib/schema_form.js";
import { validateInputs, problemsToErrors } from "../lib/validate.js";
import { ResultView } from "../lib/result_view.js";
import { usd, when } from "../lib/format.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const STATUS_OF = { queued: "queued", released: "queued", started: "running" };

/** "/frame/width" -> ["frame", "width"]. */
function keysOf(ptr) {
  return ptr === "" ? [] : ptr.slice(1).split("/").map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** "Frame › Width" for an error's place, from the titles along the schema. */
function labelAt(schema, ptr) {
  const keys = keysOf(ptr);
  if (!keys.length) return "Inputs";
  const out = [];
  let s = schema || {};
  for (const k of keys) {
    const next = s && s.properties && s.properties[k] ? s.properties[k] : s && s.items && /^\d+$/.test(k) ? s.items : null;
    if (!next) {
      out.push(k);
      s = {};
      continue;
    }
    out.push(/^\d+$/.test(k) && next === s.items ? `item ${Number(k) + 1}` : describe(next, k, false).label);
    s = next;
  }
  return out.join(" › ");
}

/** Focuses the control of an error's field (or its nearest rendered parent). */
function focusField(ptr) {
  let keys = keysOf(ptr);
  for (;;) {
    const el = document.getElementById(fieldId(keys));
    if (el) {
      const target = /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName) ? el : el.querySelector("input, select, textarea, button");
      (target || el).focus();
      (target || el).scrollIntoView({ block: "center" });
      return;
    }
    if (!keys.length) return;
    keys = keys.slice(0, -1);
  }
}

/** The inputs as JSON will send them (no undefined left anywhere). */
const clean = (v) => JSON.parse(JSON.stringify(v === undefined ? {} : v));

/** The inputs for reading: an inline file's base64 cut to its first characters. */
function shorten(v) {
  if (typeof v === "string") return v.length > 240 ? `${v.slice(0, 60)}… (${v.length} characters)` : v;
  if (Array.isArray(v)) return v.map(shorten);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shorten(x)]));
  return v;
}

function Summary({ items, schema, boxRef }) {
  if (!items.length) return null;
  return html`<div class="error pg-summary" role="alert" tabindex="-1" ref=${boxRef}>
    <p><strong>${items.length === 1 ? "1 problem" : `${items.length} problems`}</strong> to fix before this can run:</p>
    <ul>
      ${items.map((e, i) => html`<li key=${i}>
        <button type="button" class="link" onClick=${() => focusField(e.path)}>${labelAt(schema, e.path)}</button>: ${e.message}
      </li>`)}
    </ul>
  </div>`;
}

function InputsForm({ skill, onRun, running, serverErrors }) {
  const client = useClient();
  const schema = skill.input_schema && typeof skill.input_schema === "object" ? skill.input_schema : null;
  const [value, setValue] = useState(() => initialInputs(schema));
  const [local, setLocal] = useState({});
  const [busy, setBusy] = useState({});
  const [tried, setTried] = useState(false);
  const [errors, setErrors] = useState([]);
  const summary = useRef(null);

  // Once a submit was refused, errors follow the edits (fixed ones go away at once).
  useEffect(() => {
    if (tried) setErrors(validateInputs(schema, clean(value)).errors);
  }, [value]);
  useEffect(() => {
    if (serverErrors.length) {
      setTried(true);
      setErrors(serverErrors);
    }
  }, [serverErrors]);

  const shown = tried ? errors : [];
  const ctx = {
    client,
    set: (path, v) => setValue((cur) => (path.length ? setIn(cur, path, v) ?? {} : v ?? {})),
    setLocal: (ptr, msg) =>
      setLocal((cur) => {
        if ((cur[ptr] ?? null) === msg) return cur;
        const next = { ...cur };
        if (msg === null) delete next[ptr];
        else next[ptr] = msg;
        return next;
      }),
    setBusy: (ptr, b) =>
      setBusy((cur) => {
        if (!!cur[ptr] === b) return cur;
        const next = { ...cur };
        if (b) next[ptr] = true;
        else delete next[ptr];
        return next;
      }),
    errorsFor: (ptr, deep) => {
      const under = (p) => p === ptr || (deep && p.startsWith(ptr + "/"));
      const mine = Object.entries(local).filter(([p]) => under(p)).map(([, m]) => m);
      if (mine.length) return mine;
      return shown.filter((e) => under(e.path)).map((e) => e.message);
    },
  };

  const localItems = Object.entries(local).map(([path, message]) => ({ path, message }));
  // Before a first Run, problems show at their fields only; the summary is Run's answer.
  const items = tried ? [...localItems, ...shown.filter((e) => !(e.path in local))] : [];
  const uploading = Object.keys(busy).length > 0;

  const submit = (e) => {
    e.preventDefault();
    if (uploading) return;
    const inputs = clean(value);
    const res = validateInputs(schema, inputs);
    setTried(true);
    setErrors(res.errors);
    if (!res.valid || localItems.length) {
      // The summary renders with this update; focus it once it is there.
      requestAnimationFrame(() => summary.current && summary.current.focus());
      return;
    }
    onRun(inputs);
  };

  const rootFields = schema && widgetFor(schema) === "object" ? propertiesOf(schema) : null;
  return html`<form class="pg-form" onSubmit=${submit} novalidate aria-label=${`Inputs of ${skill.name}`}>
    <${Summary} items=${items} schema=${schema} boxRef=${summary} />
    ${rootFields
      ? rootFields.length
        ? rootFields.map(
            ([k, sub, req]) => html`<${SchemaField} key=${k} schema=${sub} name=${k} required=${req}
              path=${[k]} value=${value[k]} ctx=${ctx} />`,
          )
        : html`<p class="muted">This skill takes no inputs.</p>`
      : html`<${SchemaField} schema=${schema || {}} name="" label="Inputs" required=${false} path=${[]}
          value=${value} ctx=${ctx} />`}
    <div class="row">
      <button type="submit" class="primary" disabled=${running || uploading}>
        ${running ? "Running…" : uploading ? "Uploading…" : "Run"}
      </button>
      ${uploading ? html`<span class="muted" role="status">Waiting for the upload to finish.</span>` : null}
    </div>
    <details class="pg-request">
      <summary>Request body</summary>
      <${JsonView} value=${{ skill: skill.name, inputs: shorten(clean(value)) }} label="Request body" />
    </details>
  </form>`;
}

function eventText(ev) {
  const p = ev.payload || {};
  switch (ev.type) {
    case "queued":
      return p.held ? "waiting for credit" : "";
    case "started":
      return `attempt ${p.attempt ?? 1}`;
    case "log":
      return (p.lines || []).join("\n");
    case "cost":
      return `${p.model || p.provider || ""} ${usd(p.billed_micros)}`;
    case "succeeded":
    case "failed":
    case "cancelled":
      return p.error ? String(p.error).split("\n")[0] : "";
    default:
      return "";
  }
}

function RunView({ run, skill }) {
  const client = useClient();
  if (!run) return html`<p class="muted">Fill the form and press Run: the job's events show here as they happen, then its result.</p>`;
  const last = [...run.events].reverse().find((e) => STATUS_OF[e.type] || TERMINAL.has(e.type));
  const status = run.job ? run.job.status : last ? STATUS_OF[last.type] || last.type : run.phase === "starting" ? "submitting" : "queued";
  return html`<div class="pg-run">
    <p class="row" role="status" aria-live="polite">
      <span>Status:</span> <${StatusBadge} status=${status} />
      ${run.jobId ? html`<a href=${href("/jobs/" + run.jobId)}>Job <code>${run.jobId}</code></a>` : null}
    </p>
    <${ErrorBox} error=${run.error} />
    <h3>Events</h3>
    <ol class="pg-events" role="log" aria-label="Events of the run">
      ${run.events.map((ev) => html`<li key=${ev.id}>
        <span class="pg-ev-type">${ev.type}</span>
        <time class="muted" datetime=${ev.at}>${when(ev.at)}</time>
        ${eventText(ev) ? html`<pre class="pg-ev-text">${eventText(ev)}</pre>` : null}
      </li>`)}
    </ol>
    ${run.deltas ? html`<h3>Model output</h3><pre class="json" aria-label="Model output">${run.deltas}</pre>` : null}
    ${run.job
      ? html`<section class="pg-result" aria-labelledby="pg-result-h">
          <h2 id="pg-result-h">Result</h2>
          <p class="row"><${StatusBadge} status=${run.job.status} /> <span class="muted">cost ${usd(run.job.cost_micros)}</span></p>
          ${run.job.status === "succeeded"
            ? html`<${ResultView} value=${run.job.result} schema=${skill.output_schema} client=${client} />`
            : run.job.error
              ? html`<pre class="json pg-job-error" aria-label="Job error">${run.job.error}</pre>`
              : null}
        </section>`
      : null}
  </div>`;
}

/** One skill: its form and its latest run. */
function SkillPlayground({ skill }) {
  const client = useClient();
  const [run, setRun] = useState(null);
  const [serverErrors, setServerErrors] = useState([]);
  const ctrl = useRef(null);
  useEffect(() => () => ctrl.current && ctrl.current.abort(), []);

  const start = async (inputs) => {
    if (ctrl.current) ctrl.current.abort();
    const c = new AbortController();
    ctrl.current = c;
    const state = { jobId: null, lastId: null, ended: false };
    setRun({ phase: "starting", jobId: null, events: [], deltas: "", job: null, error: null });
    const update = (fn) => !c.signal.aborted && setRun((r) => fn(r));
    const onEvent = (f) => {
      if (f.event === "end") {
        state.ended = true;
        update((r) => ({ ...r, job: f.data, jobId: r.jobId || f.data?.id || null }));
      } else if (f.event === "model_delta") {
        update((r) => ({ ...r, deltas: r.deltas + (f.data?.payload?.text || "") }));
      } else if (f.data && typeof f.data === "object") {
        if (f.id) state.lastId = f.id;
        // A resumed stream never repeats an event, but be sure: ids are positions.
        update((r) => (r.events.some((e) => e.id === f.data.id) ? r : { ...r, events: [...r.events, f.data] }));
      }
    };
    try {
      await client.stream("/v1/jobs", {
        method: "POST",
        query: { stream: "true" },
        json: { skill: skill.name, inputs },
        signal: c.signal,
        onOpen: (resp) => {
          state.jobId = resp.headers.get("Puras-Job-Id");
          update((r) => ({ ...r, phase: "streaming", jobId: state.jobId }));
        },
        onEvent,
      });
      // A dropped connection ends the stream early: re-attach where it stopped.
      for (let tries = 0; !state.ended && state.jobId && tries < 3 && !c.signal.aborted; tries++) {
        await client.stream(`/v1/jobs/${encodeURIComponent(state.jobId)}/stream`, {
          signal: c.signal,
          lastEventId: state.lastId || undefined,
          onEvent,
        });
      }
      update((r) => ({ ...r, phase: "done" }));
    } catch (e) {
      if (e.name === "AbortError") return;
      const problems = e.body?.error?.problems || e.body?.problems;
      if (e.status === 422 && Array.isArray(problems)) setServerErrors(problemsToErrors(problems));
      update((r) => ({ ...r, phase: "error", error: e }));
    } finally {
      if (ctrl.current === c) ctrl.current = null;
    }
  };

  const running = !!run && (run.phase === "starting" || run.phase === "streaming");
  return html`<div class="pg-layout">
    <section aria-labelledby="pg-form-h">
      <h2 id="pg-form-h">Inputs</h2>
      <${InputsForm} skill=${skill} onRun=${start} running=${running} serverErrors=${serverErrors} />
    </section>
    <section aria-labelledby="pg-run-h">
      <h2 id="pg-run-h">Run</h2>
      <${RunView} run=${run} skill=${skill} />
    </section>
  </div>`;
}

export default function Playground({ params }) {
  const client = useClient();
  const { data, error, loading, reload } = useAsync((signal) => client.get("/v1/skills", { signal }), []);
  const skills = (data && data.skills) || [];
  const name = params.skill || "";
  const skill = skills.find((s) => s.name === name);

  // Without a skill in the address, open the first one (the address then names it).
  useEffect(() => {
    if (!name && skills.length) navigate("/playground/" + encodeURIComponent(skills[0].name), null, { replace: true });
  }, [name, skills.length]);

  return html`<div>
    <${PageTitle} actions=${html`<button type="button" onClick=${reload}>Reload skills</button>`}>Playground<//>
    <${ErrorBox} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data && !skills.length ? html`<${Empty}>The active deployment has no skills: push a project first.<//>` : null}
    ${skills.length
      ? html`<div class="field pg-pick">
          <label for="pg-skill">Skill</label>
          <select id="pg-skill" value=${skill ? name : ""} aria-describedby="pg-skill-help"
            onChange=${(e) => navigate("/playground/" + encodeURIComponent(e.currentTarget.value))}>
            ${skill ? null : html`<option value="">— choose a skill —</option>`}
            ${skills.map((s) => html`<option value=${s.name}>${s.name}</option>`)}
          </select>
          <p class="help" id="pg-skill-help">Skills of the active deployment${data.deployment_id ? html` <code>${data.deployment_id}</code>` : null}.</p>
        </div>`
      : null}
    ${name && data && !skill ? html`<${Empty}>No skill called <code>${name}</code> in the active deployment.<//>` : null}
    ${skill
      ? html`<div key=${(data.deployment_id || "") + "/" + skill.name}>
          <p class="pg-about">
            ${skill.description ? html`${skill.description} ` : null}
            <span class="muted">${skill.kind}${skill.entrypoint ? html` · <code>${skill.entrypoint}</code>` : null}${skill.timeout_seconds ? ` · ${skill.timeout_seconds} s limit` : ""}</span>
          </p>
          <details class="pg-schemas">
            <summary>Schemas</summary>
            <h3>input_schema</h3>
            <${JsonView} value=${skill.input_schema ?? null} label="input_schema" />
            <h3>output_schema</h3>
            <${JsonView} value=${skill.output_schema ?? null} label="output_schema" />
          </details>
          <${SkillPlayground} skill=${skill} />
        </div>`
      : null}
  </div>`;
}
