// One job: what it was asked, what it answered, its events as they arrive (SSE), what it
// cost, and the actions on it (cancel, rerun, feedback).
import { html, useEffect, useState } from "../lib/ui.js";
import {
  Empty,
  ErrorBox,
  JsonView,
  Loading,
  PageTitle,
  StatusBadge,
  useAsync,
  useClient,
} from "../lib/components.js";
import { href, navigate } from "../lib/router.js";
import { duration, usd, when } from "../lib/format.js";
import { EventList, spentSoFar, useJobStream } from "../lib/job_events.js";
import { ResultView } from "../lib/result_view.js";

const LIVE = new Set(["queued", "running"]);
const jobPath = (id) => `/v1/jobs/${encodeURIComponent(id)}`;

function Facts({ job, cost }) {
  const row = (k, v) => html`<dt>${k}</dt><dd>${v}</dd>`;
  return html`<dl class="facts">
    ${row("Status", html`<${StatusBadge} status=${job.status} />`)}
    ${row("Skill", job.skill)}
    ${row("Deployment", html`<code>${job.deployment_id || "–"}</code>`)}
    ${row("Created", html`<time datetime=${job.created_at}>${when(job.created_at)}</time>`)}
    ${row("Started", job.started_at ? html`<time datetime=${job.started_at}>${when(job.started_at)}</time>` : "–")}
    ${row("Finished", job.finished_at ? html`<time datetime=${job.finished_at}>${when(job.finished_at)}</time>` : "–")}
    ${row("Duration", duration(job.started_at, job.finished_at))}
    ${row("Attempts", String(job.attempts ?? 0))}
    ${row("Cost", html`<span class="cost">${usd(cost)}</span>`)}
    ${job.held_reason ? row("Held", job.held_reason) : null}
  </dl>`;
}

function Actions({ job, onChanged }) {
  const client = useClient();
  const [busy, setBusy] = useState("");
  const [error, setError] = useState(null);
  const act = (name, fn) => async () => {
    setBusy(name);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy("");
    }
  };
  const cancel = act("cancel", async () => onChanged(await client.post(jobPath(job.id) + "/cancel")));
  const rerun = act("rerun", async () => {
    const again = await client.post("/v1/jobs", { skill: job.skill, inputs: job.inputs });
    navigate("/jobs/" + encodeURIComponent(again.id));
  });
  return html`<div class="row job-actions">
    ${LIVE.has(job.status)
      ? html`<button type="button" class="danger" onClick=${cancel} disabled=${!!busy}>${busy === "cancel" ? "Cancelling…" : "Cancel job"}</button>`
      : null}
    <button type="button" onClick=${rerun} disabled=${!!busy}>${busy === "rerun" ? "Submitting…" : "Rerun with the same inputs"}</button>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
  </div>`;
}

function Feedback({ jobId }) {
  const client = useClient();
  const list = useAsync((signal) => client.get(jobPath(jobId) + "/feedback", { signal }), [client, jobId]);
  const [rating, setRating] = useState("0");
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (ev) => {
    ev.preventDefault();
    setError(null);
    const body = { rating: Number(rating) };
    if (comment.trim()) body.comment = comment.trim();
    if (body.rating === 0 && !body.comment) return setError(new Error("Give a thumb or write a comment."));
    setBusy(true);
    try {
      await client.post(jobPath(jobId) + "/feedback", body);
      setComment("");
      list.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const rows = list.data?.feedback || [];
  const thumb = (r) => (r > 0 ? "👍 good" : r < 0 ? "👎 bad" : "no rating");
  return html`<section aria-labelledby="fb-title">
    <h2 id="fb-title">Feedback</h2>
    <${ErrorBox} error=${list.error} />
    ${rows.length
      ? html`<ul class="feedback">
          ${rows.map(
            (f) => html`<li key=${f.end_user_id + f.created_at}>
              <strong>${thumb(f.rating)}</strong>${f.comment ? html` — <span>${f.comment}</span>` : null}
              <span class="muted"> ${f.end_user_id ? `from ${f.end_user_id}` : "anonymous"}, ${when(f.updated_at || f.created_at)}</span>
            </li>`,
          )}
        </ul>`
      : list.loading
        ? html`<${Loading} />`
        : html`<${Empty}>No feedback yet.<//>`}
    <form class="card feedback-form" onSubmit=${submit}>
      <fieldset>
        <legend>Rating</legend>
        ${[
          ["1", "Good"],
          ["-1", "Bad"],
          ["0", "No rating"],
        ].map(
          ([v, label]) => html`<label class="inline"><input type="radio" name="rating" value=${v} checked=${rating === v}
              onChange=${() => setRating(v)} /> ${label}</label>`,
        )}
      </fieldset>
      <div class="field">
        <label for="fb-comment">Comment</label>
        <textarea id="fb-comment" maxlength="4000" value=${comment} onInput=${(e) => setComment(e.currentTarget.value)}></textarea>
      </div>
      <${ErrorBox} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Sending…" : "Send feedback"}</button>
    </form>
  </section>`;
}

function Usage({ rows }) {
  if (!rows) return html`<${Loading} />`;
  if (!rows.length) return html`<${Empty}>No billed model calls.<//>`;
  return html`<div class="table-wrap">
    <table>
      <thead>
        <tr><th scope="col" class="num">Step</th><th scope="col">Model</th><th scope="col" class="num">Input</th><th scope="col" class="num">Output</th><th scope="col" class="num">Cache read</th><th scope="col" class="num">Cache write</th><th scope="col" class="num">Billed</th></tr>
      </thead>
      <tbody>
        ${rows.map(
          (u, i) => html`<tr key=${i}>
            <td class="num">${u.step}</td><td>${u.model}</td><td class="num">${u.input_tokens}</td><td class="num">${u.output_tokens}</td>
            <td class="num">${u.cache_read_tokens}</td><td class="num">${u.cache_write_tokens}</td><td class="num">${usd(u.billed_micros)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** The job as loaded, moved on by the events that came since (status, start, the end). */
function liveJob(loaded, events) {
  let job = loaded;
  for (const ev of events) {
    if (TERMINAL.has(ev.type) && ev.payload && ev.payload.id) job = { ...ev.payload, cost_micros: Math.max(ev.payload.cost_micros || 0, job.cost_micros || 0) };
    else if (ev.type === "started" && !TERMINAL.has(job.status)) job = { ...job, status: "running", started_at: job.started_at || ev.at };
  }
  // A read newer than the stream (after a cancel, or once it ended) wins.
  return TERMINAL.has(loaded.status) ? loaded : job;
}

function Job({ id }) {
  const client = useClient();
  const job = useAsync((signal) => client.get(jobPath(id), { signal }), [client, id]);
  const usage = useAsync((signal) => client.get(jobPath(id) + "/usage", { signal }), [client, id]);
  // The output schema only the active deployment's skills carry; without one the result is plain JSON.
  const skills = useAsync((signal) => client.get("/v1/skills", { signal }).catch(() => null), [client]);
  const stream = useJobStream(client, id);
  // The stream's end is the job as it ended; a read afterwards has every late cost too.
  useEffect(() => {
    if (!stream.live) {
      job.reload();
      usage.reload();
    }
  }, [stream.live]);
  if (job.error && !job.data) return html`<${PageTitle}>Job<//><${ErrorBox} error=${job.error} />`;
  if (!job.data) return html`<${Loading} />`;
  const current = liveJob(job.data, stream.events);
  const cost = Math.max(current.cost_micros || 0, spentSoFar(stream.events) || 0);
  const skill = skills.data?.skills?.find((s) => s.name === current.skill && skills.data.deployment_id === current.deployment_id)
    || skills.data?.skills?.find((s) => s.name === current.skill);
  return html`<article>
    <p><a href=${href("/jobs")}>← Jobs</a></p>
    <${PageTitle} actions=${html`<${Actions} job=${current} onChanged=${job.reload} />`}>${"Job: " + current.skill}<//>
    <p class="mono muted">${current.id}</p>
    <${ErrorBox} error=${job.error} />
    <${Facts} job=${current} cost=${cost} />
    <div class="job-io">
      <section aria-labelledby="in-title">
        <h2 id="in-title">Inputs</h2>
        <${JsonView} value=${current.inputs} label="inputs" />
      </section>
      <section aria-labelledby="out-title">
        <h2 id="out-title">${current.error ? "Error" : "Result"}</h2>
        ${current.error
          ? html`<pre class="json job-error" tabindex="0">${current.error}</pre>`
          : current.result !== null && current.result !== undefined
            ? html`<${ResultView} value=${current.result} schema=${skill?.output_schema} client=${client} />`
            : html`<${Empty}>${LIVE.has(current.status) ? "Not finished yet." : "No result."}<//>`}
      </section>
    </div>
    <section aria-labelledby="ev-title">
      <h2 id="ev-title">Events ${stream.live ? html`<span class="badge st-running" role="status">live</span>` : null}</h2>
      <${ErrorBox} error=${stream.error} />
      <${EventList} events=${stream.events} deltas=${stream.deltas} />
      ${!stream.live && !stream.error ? html`<p class="muted" role="status">Stream ended.</p>` : null}
    </section>
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage</h2>
      <${ErrorBox} error=${usage.error} />
      <${Usage} rows=${usage.data?.usage} />
    </section>
    <${Feedback} jobId=${current.id} />
  </article>`;
}

export default function JobPage({ params }) {
  // Keyed by id: a rerun navigates here with another id and must start from nothing.
  return html`<${Job} key=${params.id} id=${params.id} />`;
}
