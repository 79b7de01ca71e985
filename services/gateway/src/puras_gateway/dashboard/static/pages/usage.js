// What the project spent: its balance, its billed calls per day, skill and model over a
// period (kept in the hash, "#/usage?days=90", so a view can be linked), and the jobs that
// cost something, each opening to its billed calls.
import { html, useState } from "../lib/ui.js";
import { Empty, ErrorBox, Loading, PageTitle, useAsync, useClient } from "../lib/components.js";
import { href, navigate } from "../lib/router.js";
import { usd, when } from "../lib/format.js";
import { DayBars, NameBars } from "../lib/charts.js";

const PERIODS = [7, 30, 90];
// Jobs are listed newest first without a date filter: read pages back to the period's
// start, but never more than this many jobs (a busy project's line items stay a sample).
const JOB_PAGE = 200;
const MAX_JOB_PAGES = 5;

/** The period's first UTC midnight: the last `days` UTC days, today included. */
function periodStart(days, now = new Date()) {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  d.setUTCDate(d.getUTCDate() - (days - 1));
  return d.toISOString().slice(0, 10);
}

function Balance() {
  const client = useClient();
  const bal = useAsync((signal) => client.get("/v1/billing/balance", { signal }), []);
  if (bal.error) return html`<${ErrorBox} error=${bal.error} />`;
  if (!bal.data) return html`<${Loading} label="Loading the balance…" />`;
  const micros = bal.data.credit_balance_micros;
  return html`<section class="card usage-balance" aria-labelledby="balance-h">
    <h2 id="balance-h">Credit balance</h2>
    <p class=${"balance-figure" + (micros <= 0 ? " st-bad" : "")}>${usd(micros)}</p>
    ${micros <= 0 ? html`<p>New jobs wait for credit until the operator grants some.</p>` : null}
  </section>`;
}

function JobCalls({ id }) {
  const client = useClient();
  const rows = useAsync((signal) => client.get(`/v1/jobs/${encodeURIComponent(id)}/usage`, { signal }), [id]);
  if (rows.error) return html`<${ErrorBox} error=${rows.error} />`;
  if (!rows.data) return html`<${Loading} label="Loading the job's calls…" />`;
  const list = rows.data.usage;
  if (!list.length) return html`<${Empty}>This job made no billed call.</${Empty}>`;
  return html`<div class="table-wrap">
    <table class="line-items">
      <caption class="sr-only">Billed calls of job ${id}</caption>
      <thead><tr>
        <th scope="col">#</th><th scope="col">Billed</th><th scope="col">Provider</th><th scope="col">Model</th>
        <th scope="col" class="num">Input tokens</th><th scope="col" class="num">Output tokens</th>
        <th scope="col" class="num">Cache read / write</th><th scope="col" class="num">Cost</th>
      </tr></thead>
      <tbody>
        ${list.map(
          (r, i) => html`<tr key=${i}>
            <td>${r.step ?? i + 1}</td>
            <td><time datetime=${r.at}>${when(r.at)}</time></td>
            <td>${r.provider}</td>
            <td class="mono">${r.model}</td>
            <td class="num">${r.input_tokens ?? "–"}</td>
            <td class="num">${r.output_tokens ?? "–"}</td>
            <td class="num">${r.cache_read_tokens ?? 0} / ${r.cache_write_tokens ?? 0}</td>
            <td class="num">${usd(r.billed_micros)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

async function costlyJobs(client, from, signal) {
  const start = new Date(from).getTime();
  const out = [];
  let cursor = null;
  for (let page = 0; page < MAX_JOB_PAGES; page++) {
    const r = await client.get("/v1/jobs", { query: { limit: JOB_PAGE, cursor }, signal });
    let older = false;
    for (const j of r.jobs) {
      if (new Date(j.created_at).getTime() < start) older = true;
      else if (j.cost_micros > 0) out.push(j);
    }
    if (older || !r.next_cursor) return { jobs: out, complete: true };
    cursor = r.next_cursor;
  }
  return { jobs: out, complete: false };
}

function LineItems({ from }) {
  const client = useClient();
  const jobs = useAsync((signal) => costlyJobs(client, from, signal), [from]);
  const [open, setOpen] = useState(() => new Set());
  if (jobs.error) return html`<${ErrorBox} error=${jobs.error} />`;
  if (!jobs.data) return html`<${Loading} label="Loading the jobs…" />`;
  const list = jobs.data.jobs;
  if (!list.length) {
    return html`<${Empty}>No job created in this period has cost anything yet: deterministic skills make no billed call.</${Empty}>`;
  }
  const toggle = (id) =>
    setOpen((s) => {
      const n = new Set(s);
      n.has(id) ? n.delete(id) : n.add(id);
      return n;
    });
  return html`
    ${jobs.data.complete ? null : html`<p class="muted">Showing the costly jobs among the newest ${JOB_PAGE * MAX_JOB_PAGES}.</p>`}
    <ul class="job-costs">
      ${list.map(
        (j) => html`<li key=${j.id} class="card">
          <div class="row job-cost">
            <a class="mono" href=${href("/jobs/" + encodeURIComponent(j.id))}>${j.id}</a>
            <span>${j.skill}</span>
            <time class="muted" datetime=${j.created_at}>${when(j.created_at)}</time>
            <strong class="cost">${usd(j.cost_micros)}</strong>
            <button type="button" aria-expanded=${open.has(j.id)} aria-controls=${"calls-" + j.id}
              onClick=${() => toggle(j.id)}>${open.has(j.id) ? "Hide calls" : "Show calls"}</button>
          </div>
          ${open.has(j.id) ? html`<div id=${"calls-" + j.id}><${JobCalls} id=${j.id} /></div>` : null}
        </li>`,
      )}
    </ul>`;
}

function Spend({ from }) {
  const client = useClient();
  const q = (group_by, signal) => client.get("/v1/usage", { query: { from, group_by }, signal });
  const all = useAsync(
    (signal) => Promise.all([q("day", signal), q("skill", signal), q("model", signal)]),
    [from],
  );
  if (all.error) return html`<${ErrorBox} error=${all.error} />`;
  if (!all.data) return html`<${Loading} label="Loading the spend…" />`;
  const [day, skill, model] = all.data;
  const total = day.usage.reduce((s, r) => s + r.billed_micros, 0);
  const calls = day.usage.reduce((s, r) => s + r.calls, 0);
  return html`<section aria-labelledby="spend-h">
    <h2 id="spend-h">Spend</h2>
    <p class="spend-total">
      <strong>${usd(total)}</strong> in ${calls} billed call${calls === 1 ? "" : "s"}, from <time datetime=${day.from}>${when(day.from)}</time> to <time datetime=${day.to}>${when(day.to)}</time>
    </p>
    ${day.usage.length
      ? html`<div class="charts">
          <${DayBars} title="Spend by day" rows=${day.usage} from=${day.from} to=${day.to} />
          <${NameBars} title="Spend by skill" keyLabel="Skill" rows=${skill.usage} />
          <${NameBars} title="Spend by model" keyLabel="Model" rows=${model.usage} />
        </div>`
      : html`<${Empty}>No billed calls in this period. Jobs of agent skills and media calls are billed; deterministic skills cost nothing.</${Empty}>`}
  </section>`;
}

export default function UsagePage({ query }) {
  const asked = Number(query.get("days"));
  const days = PERIODS.includes(asked) ? asked : 30;
  const from = periodStart(days);
  return html`
    <${PageTitle}>Usage<//>
    <${Balance} />
    <form class="row usage-period" onSubmit=${(e) => e.preventDefault()}>
      <div class="field">
        <label for="usage-period">Period</label>
        <select id="usage-period" value=${String(days)}
          onChange=${(e) => navigate("/usage", { days: e.currentTarget.value }, { replace: true })}>
          ${PERIODS.map((d) => html`<option value=${String(d)}>Last ${d} days</option>`)}
        </select>
      </div>
    </form>
    <${Spend} from=${from} />
    <section aria-labelledby="items-h">
      <h2 id="items-h">Jobs that cost something</h2>
      <${LineItems} from=${from} />
    </section>`;
}
