// The project's deployments: push a bundle, activate one (activating an older one is
// the rollback), delete the ones no longer wanted. Only the active deployment's skills
// carry schemas in the API (GET /v1/skills), so only they show them.
import { html, useRef, useState } from "../lib/ui.js";
import {
  ConfirmButton,
  Empty,
  ErrorBox,
  JsonView,
  Loading,
  PageTitle,
  Progress,
  useAsync,
  useClient,
} from "../lib/components.js";
import { bytes, when } from "../lib/format.js";

function Push({ onPushed }) {
  const client = useClient();
  const fileRef = useRef(null);
  const [notes, setNotes] = useState("");
  const [activate, setActivate] = useState(true);
  const [progress, setProgress] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const submit = async (ev) => {
    ev.preventDefault();
    setError(null);
    setDone(null);
    const file = fileRef.current?.files?.[0];
    if (!file) return setError(new Error("Choose the project's .zip bundle first."));
    const form = new FormData();
    form.append("bundle", file, file.name);
    form.append("notes", notes);
    form.append("activate", activate ? "true" : "false");
    setProgress({ sent: 0, total: file.size });
    try {
      const dep = await client.upload("/v1/deployments", form, {
        onProgress: (sent, total) => setProgress({ sent, total }),
      });
      setDone(dep);
      setNotes("");
      if (fileRef.current) fileRef.current.value = "";
      onPushed();
    } catch (e) {
      setError(e);
      // A failed build still created a deployment (status failed): show it in the list.
      if (e.body?.error?.deployment) onPushed();
    } finally {
      setProgress(null);
    }
  };
  return html`<form class="card push" onSubmit=${submit} aria-labelledby="push-title">
    <h2 id="push-title">Push a deployment</h2>
    <div class="field">
      <label for="push-bundle">Bundle (.zip)</label>
      <input id="push-bundle" type="file" accept=".zip,application/zip" ref=${fileRef} aria-describedby="push-help" />
      <span id="push-help" class="help">The project folder zipped (<code>puras push</code> packs the same).</span>
    </div>
    <div class="field">
      <label for="push-notes">Notes</label>
      <input id="push-notes" type="text" value=${notes} onInput=${(e) => setNotes(e.currentTarget.value)} />
    </div>
    <label class="inline"><input type="checkbox" checked=${activate} onChange=${(e) => setActivate(e.currentTarget.checked)} /> Activate once ready</label>
    ${progress ? html`<${Progress} value=${progress.sent} max=${progress.total} label="upload" />` : null}
    ${progress && progress.total && progress.sent >= progress.total ? html`<p class="muted" role="status">Uploaded; deploying…</p>` : null}
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    ${done ? html`<p role="status" class="ok">Pushed <code>${done.id}</code> (${done.status}${done.active ? ", active" : ""}).</p>` : null}
    <p><button type="submit" class="primary" disabled=${!!progress}>${progress ? "Pushing…" : "Push"}</button></p>
  </form>`;
}

function Skills({ dep, detail }) {
  if (!dep.skills?.length) return html`<p class="muted">No skills.</p>`;
  return html`<ul class="skills">
    ${dep.skills.map((s) => {
      const d = detail && detail.get(s.name);
      return html`<li key=${s.name}>
        <strong>${s.name}</strong> <span class="muted">(${s.kind})</span>${s.description ? html` — ${s.description}` : null}
        ${d
          ? html`<details>
              <summary>Schemas of ${s.name}</summary>
              <p class="muted">input_schema</p>
              <${JsonView} value=${d.input_schema ?? null} label=${`input schema of ${s.name}`} />
              <p class="muted">output_schema</p>
              <${JsonView} value=${d.output_schema ?? null} label=${`output schema of ${s.name}`} />
            </details>`
          : null}
      </li>`;
    })}
  </ul>`;
}

function Deployment({ dep, detail, onChanged }) {
  const client = useClient();
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const path = `/v1/deployments/${encodeURIComponent(dep.id)}`;
  const activate = async () => {
    setBusy(true);
    setError(null);
    try {
      await client.post(path + "/activate");
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      await client.del(path);
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return html`<li class=${"card deployment" + (dep.active ? " active" : "")} aria-label=${`deployment ${dep.id}`}>
    <div class="row dep-head">
      <code>${dep.id}</code>
      ${dep.active ? html`<span class="badge st-ok">active</span>` : null}
      ${dep.status && dep.status !== "ready" ? html`<span class=${"badge " + (dep.status === "failed" ? "st-bad" : "st-running")}>${dep.status}</span>` : null}
      <span class="muted">${when(dep.created_at)}</span>
      ${dep.bundle_size ? html`<span class="muted">${bytes(dep.bundle_size)}</span>` : null}
    </div>
    ${dep.notes ? html`<p class="dep-notes">${dep.notes}</p>` : null}
    ${dep.error ? html`<pre class="json job-error" tabindex="0">${dep.error}</pre>` : null}
    <${Skills} dep=${dep} detail=${detail && detail.deploymentId === dep.id ? detail.byName : null} />
    <div class="row">
      ${dep.active
        ? null
        : html`<button type="button" onClick=${activate} disabled=${busy || dep.status === "failed"}>${busy ? "Activating…" : "Activate"}</button>`}
      <${ConfirmButton} label="Delete" confirmLabel="Yes, delete it" onConfirm=${remove} />
    </div>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
  </li>`;
}

export default function DeploymentsPage() {
  const client = useClient();
  const list = useAsync((signal) => client.get("/v1/deployments", { signal }), [client]);
  const skills = useAsync(
    (signal) => client.get("/v1/skills", { signal }).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
    [client, list.data],
  );
  const detail = skills.data
    ? { deploymentId: skills.data.deployment_id, byName: new Map(skills.data.skills.map((s) => [s.name, s])) }
    : null;
  const deps = list.data?.deployments || [];
  return html`<section>
    <${PageTitle} actions=${html`<button type="button" onClick=${list.reload} disabled=${list.loading}>Refresh</button>`}>Deployments<//>
    <${Push} onPushed=${list.reload} />
    <h2>All deployments</h2>
    <${ErrorBox} error=${list.error} />
    ${list.loading && !list.data
      ? html`<${Loading} />`
      : deps.length
        ? html`<ul class="deployments">
            ${deps.map((d) => html`<${Deployment} key=${d.id} dep=${d} detail=${detail} onChanged=${list.reload} />`)}
          </ul>`
        : html`<${Empty}>No deployments yet: push the project's bundle above.<//>`}
  </section>`;
}
