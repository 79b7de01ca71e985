// One project, as the operator sees it: its keys (create, revoke) and its credit.
import { html, useState } from "../lib/ui.js";
import {
  ConfirmButton,
  CopyButton,
  Empty,
  ErrorBox,
  Loading,
  PageTitle,
  useAsync,
  useClient,
} from "../lib/components.js";
import { href } from "../lib/router.js";
import { usd, when } from "../lib/format.js";

/** A positive amount of dollars with at most six decimals (the API converts exactly to micros). */
export function checkUsd(text) {
  const t = String(text).trim();
  if (!/^\d+(\.\d{1,6})?$/.test(t)) return "Enter an amount in dollars, e.g. 10 or 2.50 (at most 6 decimals).";
  if (Number(t) <= 0) return "The amount must be more than zero.";
  return null;
}

function NewKey({ base, onCreated }) {
  const client = useClient();
  const [key, setKey] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      const k = await client.post(base + "/keys");
      setKey(k);
      onCreated();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<div>
    <button type="button" class="primary" onClick=${create} disabled=${busy}>${busy ? "Creating…" : "Create key"}</button>
    <${ErrorBox} error=${error} />
    ${key
      ? html`<div class="card new-key" role="status">
          <p><strong>New key</strong> (prefix <code>${key.prefix}</code>). Copy it now: it will not be shown again.</p>
          <p class="row"><code class="secret" data-copy-source=${key.key}>${key.key}</code> <${CopyButton} text=${key.key} label="Copy key" /></p>
          <button type="button" class="link" onClick=${() => setKey(null)}>I have copied it</button>
        </div>`
      : null}
  </div>`;
}

function Keys({ base }) {
  const client = useClient();
  const keys = useAsync((signal) => client.get(base + "/keys", { signal }), [client, base]);
  const [error, setError] = useState(null);
  const revoke = (prefix) => async () => {
    setError(null);
    try {
      await client.del(`${base}/keys/${encodeURIComponent(prefix)}`);
      keys.reload();
    } catch (e) {
      setError(e);
    }
  };
  const rows = keys.data?.keys || [];
  return html`<section aria-labelledby="keys-title">
    <h2 id="keys-title">API keys</h2>
    <${NewKey} base=${base} onCreated=${keys.reload} />
    <${ErrorBox} error=${keys.error || error} />
    ${keys.loading && !keys.data
      ? html`<${Loading} />`
      : rows.length
        ? html`<div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Spend limit</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                ${rows.map(
                  (k) => html`<tr key=${k.prefix}>
                    <td><code>${k.prefix}</code></td>
                    <td>${when(k.created_at)}</td>
                    <td>${k.last_used_at ? when(k.last_used_at) : "never"}</td>
                    <td>${k.spend_limit ? `${usd(k.spend_limit.micros)} a ${k.spend_limit.period}` : "none"}</td>
                    <td><${ConfirmButton} label="Revoke" confirmLabel=${`Yes, revoke ${k.prefix}`} onConfirm=${revoke(k.prefix)} /></td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
        : html`<${Empty}>No active keys.<//>`}
  </section>`;
}

function Credit({ base, balance, onGranted }) {
  const client = useClient();
  const [amount, setAmount] = useState("");
  const [note, setNote] = useState("");
  const [invalid, setInvalid] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [granted, setGranted] = useState(null);
  const submit = async (ev) => {
    ev.preventDefault();
    setError(null);
    setGranted(null);
    const bad = checkUsd(amount);
    setInvalid(bad);
    if (bad) return;
    setBusy(true);
    try {
      const body = { usd: amount.trim() };
      if (note.trim()) body.note = note.trim();
      const g = await client.post(base + "/credits", body);
      setGranted(g);
      setAmount("");
      setNote("");
      onGranted();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="credit-title">
    <h2 id="credit-title">Credit</h2>
    <p>Balance: <strong class="balance">${balance === undefined ? "–" : usd(balance)}</strong></p>
    <form class="card row grant" onSubmit=${submit} novalidate>
      <div class="field">
        <label for="grant-usd">Amount (USD)</label>
        <input id="grant-usd" type="text" inputmode="decimal" value=${amount} aria-invalid=${invalid ? "true" : undefined}
          aria-describedby=${invalid ? "grant-usd-error" : undefined} onInput=${(e) => setAmount(e.currentTarget.value)} />
        ${invalid ? html`<span id="grant-usd-error" class="field-error">${invalid}</span>` : null}
      </div>
      <div class="field">
        <label for="grant-note">Note</label>
        <input id="grant-note" type="text" value=${note} onInput=${(e) => setNote(e.currentTarget.value)} />
      </div>
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Granting…" : "Grant credit"}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${granted
      ? html`<p role="status">Granted ${usd(granted.granted_micros)}${granted.credit_balance_micros !== undefined ? `; the balance is now ${usd(granted.credit_balance_micros)}` : " (billing will record it shortly)"}.</p>`
      : null}
  </section>`;
}

export default function AdminProjectPage({ params }) {
  const client = useClient();
  const base = `/v1/admin/projects/${encodeURIComponent(params.id)}`;
  // The admin API has no single-project read: the list carries the name and balance.
  const list = useAsync((signal) => client.get("/v1/admin/projects", { signal }), [client]);
  const project = list.data?.projects?.find((p) => p.id === params.id);
  return html`<article>
    <p><a href=${href("/admin/projects")}>← Projects</a></p>
    <${PageTitle}>${project ? "Project " + project.name : "Project"}<//>
    <p class="mono muted">${params.id}</p>
    <${ErrorBox} error=${list.error} />
    ${list.data && !project ? html`<div class="error" role="alert"><p>No project with this id.</p></div>` : null}
    ${list.loading && !list.data ? html`<${Loading} />` : null}
    ${project
      ? html`<${Keys} base=${base} />
          <${Credit} base=${base} balance=${project.credit_balance_micros} onGranted=${list.reload} />`
      : null}
  </article>`;
}
