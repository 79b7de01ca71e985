// The operator's list of every project, with a form to create one.
import { html, useState } from "../lib/ui.js";
import { Empty, ErrorBox, Loading, PageTitle, useAsync, useClient } from "../lib/components.js";
import { href, navigate } from "../lib/router.js";
import { usd, when } from "../lib/format.js";

function CreateProject({ onCreated }) {
  const client = useClient();
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (ev) => {
    ev.preventDefault();
    setError(null);
    if (!name.trim()) return setError(new Error("Give the project a name."));
    setBusy(true);
    try {
      const p = await client.post("/v1/admin/projects", { name: name.trim() });
      setName("");
      onCreated(p);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card row create-project" onSubmit=${submit}>
    <div class="field">
      <label for="project-name">New project name</label>
      <input id="project-name" type="text" maxlength="200" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
    </div>
    <button type="submit" class="primary" disabled=${busy}>${busy ? "Creating…" : "Create project"}</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

export default function AdminProjectsPage() {
  const client = useClient();
  const list = useAsync((signal) => client.get("/v1/admin/projects", { signal }), [client]);
  const projects = list.data?.projects || [];
  return html`<section>
    <${PageTitle} actions=${html`<button type="button" onClick=${list.reload} disabled=${list.loading}>Refresh</button>`}>Projects<//>
    <${CreateProject} onCreated=${(p) => navigate("/admin/projects/" + encodeURIComponent(p.id))} />
    <${ErrorBox} error=${list.error} />
    ${list.loading && !list.data
      ? html`<${Loading} />`
      : projects.length
        ? html`<div class="table-wrap">
            <table>
              <thead>
                <tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Created</th><th scope="col" class="num">Active keys</th><th scope="col" class="num">Balance</th></tr>
              </thead>
              <tbody>
                ${projects.map(
                  (p) => html`<tr key=${p.id}>
                    <td><a href=${href("/admin/projects/" + encodeURIComponent(p.id))}>${p.name}</a></td>
                    <td><code>${p.id}</code></td>
                    <td><time datetime=${p.created_at}>${when(p.created_at)}</time></td>
                    <td class="num">${p.active_keys}</td>
                    <td class="num">${usd(p.credit_balance_micros)}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
        : html`<${Empty}>No projects yet.<//>`}
  </section>`;
}
