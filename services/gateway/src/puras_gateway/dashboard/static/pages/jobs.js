// The project's jobs, newest first. The filters live in the hash ("#/jobs?status=failed&
// skill=echo") so a filtered view can be linked; older pages come from the API's cursor.
import { html, useEffect, useState } from "../lib/ui.js";
import { Empty, ErrorBox, Loading, PageTitle, StatusBadge, useAsync, useClient } from "../lib/components.js";
import { href, navigate } from "../lib/router.js";
import { duration, usd, when } from "../lib/format.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const PAGE = 25;
const POLL_MS = 3000;
const LIVE = new Set(["queued", "running"]);

function Filters({ status, skill, skills }) {
  const set = (k, v) => navigate("/jobs", { status, skill, [k]: v }, { replace: true });
  const names = [...new Set([...(skills || []), ...(skill ? [skill] : [])])].sort();
  return html`<form class="row filters" onSubmit=${(e) => e.preventDefault()} aria-label="Filter jobs">
    <div class="field">
      <label for="jobs-status">Status</label>
      <select id="jobs-status" value=${status} onChange=${(e) => set("status", e.currentTarget.value)}>
        <option value="">All statuses</option>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    <div class="field">
      <label for="jobs-skill">Skill</label>
      <select id="jobs-skill" value=${skill} onChange=${(e) => set("skill", e.currentTarget.value)}>
        <option value="">All skills</option>
        ${names.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
  </form>`;
}

function JobRows({ jobs }) {
  return html`<div class="table-wrap">
    <table class="jobs-table">
      <caption class="sr-only">Jobs, newest first</caption>
      <thead>
        <tr><th scope="col">Job</th><th scope="col">Status</th><th scope="col">Skill</th><th scope="col">Created</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Cost</th></tr>
      </thead>
      <tbody>
        ${jobs.map(
          (j) => html`<tr key=${j.id}>
            <td><a class="mono" href=${href("/jobs/" + encodeURIComponent(j.id))} aria-label=${`job ${j.id}`}>${j.id.slice(0, 13)}…</a></td>
            <td><${StatusBadge} status=${j.status} /></td>
            <td>${j.skill}</td>
            <td><time datetime=${j.created_at}>${when(j.created_at)}</time></td>
            <td class="num">${j.finished_at ? duration(j.started_at || j.created_at, j.finished_at) : j.status === "running" ? "running" : "–"}</td>
            <td class="num">${usd(j.cost_micros)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export default function JobsPage({ query }) {
  const client = useClient();
  const status = query.get("status") || "";
  const skill = query.get("skill") || "";
  const first = useAsync(
    (signal) => client.get("/v1/jobs", { query: { status, skill, limit: PAGE }, signal }),
    [client, status, skill],
  );
  // The skill names to offer: the active deployment's. Without one (or if the call fails)
  // the list still filters by a skill named in the link.
  const skills = useAsync(
    (signal) =>
      client.get("/v1/skills", { signal }).then(
        (r) => r.skills.map((s) => s.name),
        (e) => (e.name === "AbortError" ? Promise.reject(e) : []),
      ),
    [client],
  );
  const empty = { jobs: [], cursor: null, busy: false, error: null };
  const [more, setMore] = useState(empty);
  useEffect(() => setMore(empty), [status, skill]);
  const refresh = () => {
    setMore(empty);
    first.reload();
  };
  // Until older pages are loaded, the cursor is the first page's as it now stands.
  const cursor = more.jobs.length ? more.cursor : first.data?.next_cursor || null;
  const loadMore = async () => {
    setMore((m) => ({ ...m, busy: true, error: null }));
    try {
      const page = await client.get("/v1/jobs", { query: { status, skill, limit: PAGE, cursor } });
      setMore((m) => ({ jobs: [...m.jobs, ...page.jobs], cursor: page.next_cursor, busy: false, error: null }));
    } catch (e) {
      setMore((m) => ({ ...m, busy: false, error: e }));
    }
  };
  // Jobs still queued or running on the first page are followed by reading it again
  // every few seconds; once older pages are loaded the list holds still (a re-read
  // would shift the pages under the reader).
  const watching = !more.jobs.length && !!first.data?.jobs.some((j) => LIVE.has(j.status));
  useEffect(() => {
    if (!watching || first.loading) return undefined;
    const t = setTimeout(first.reload, POLL_MS);
    return () => clearTimeout(t);
  }, [watching, first.data, first.loading]);
  const jobs = first.data ? [...first.data.jobs, ...more.jobs] : [];
  return html`<section>
    <${PageTitle} actions=${html`<button type="button" onClick=${refresh} disabled=${first.loading && !watching}>Refresh</button>
      <a class="button primary" href=${href("/playground")}>New job</a>`}>Jobs<//>
    <${Filters} status=${status} skill=${skill} skills=${skills.data} />
    <${ErrorBox} error=${first.error} />
    ${first.loading && !first.data
      ? html`<${Loading} />`
      : jobs.length === 0
        ? html`<${Empty}>${status || skill ? "No jobs match these filters." : "No jobs yet: run a skill from the playground."}<//>`
        : html`<${JobRows} jobs=${jobs} />`}
    <${ErrorBox} error=${more.error} />
    ${cursor
      ? html`<p><button type="button" onClick=${loadMore} disabled=${more.busy}>${more.busy ? "Loading…" : "Load older jobs"}</button></p>`
      : null}
  </section>`;
}
