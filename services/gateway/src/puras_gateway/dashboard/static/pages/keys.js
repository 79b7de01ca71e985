// The project's API keys: listed by their public prefix, created (the secret shown once,
// held only in this page's state, so leaving the page drops it) and revoked.
import { html, useEffect, useRef, useState } from "../lib/ui.js";
import {
  ConfirmButton,
  CopyButton,
  Empty,
  ErrorBox,
  Loading,
  PageTitle,
  useAsync,
  useClient,
  useSession,
} from "../lib/components.js";
import { usd, when } from "../lib/format.js";

/** Whether a listed prefix is the key this tab signed in with (its label is "puras_live_<prefix>"). */
const isSessionKey = (label, prefix) => label === prefix || label === `puras_live_${prefix}`;

function NewKey({ created, onDone }) {
  const box = useRef(null);
  useEffect(() => box.current && box.current.focus(), []);
  return html`<section class="card key-once" aria-labelledby="new-key-h" tabindex="-1" ref=${box}>
    <h2 id="new-key-h">New key ${created.prefix}</h2>
    <p><strong>Copy it now: it will not be shown again.</strong> Anyone holding it acts as this project.</p>
    <div class="row">
      <code class="secret-once" data-copy-source=${created.key}>${created.key}</code>
      <${CopyButton} text=${created.key} label="Copy key" />
    </div>
    <button type="button" onClick=${onDone}>I have copied it</button>
  </section>`;
}

function limitText(k) {
  if (!k.spend_limit) return "none";
  const spent = k.spent_micros !== undefined ? `${usd(k.spent_micros)} of ` : "";
  return `${spent}${usd(k.spend_limit.micros)} a ${k.spend_limit.period}`;
}

export default function KeysPage() {
  const client = useClient();
  const { session, signOut } = useSession();
  const keys = useAsync((signal) => client.get("/v1/keys", { signal }), []);
  const [created, setCreated] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const [limitUsd, setLimitUsd] = useState("");
  const [period, setPeriod] = useState("month");
  const create = async (ev) => {
    ev.preventDefault();
    setError(null);
    let body;
    if (limitUsd.trim()) {
      const micros = Math.round(Number(limitUsd) * 1e6);
      if (!Number.isFinite(micros) || micros < 1) {
        return setError(new Error("A spend limit is a positive amount of USD; leave it empty for none."));
      }
      body = { spend_limit: { micros, period } };
    }
    setBusy(true);
    try {
      setCreated(await client.post("/v1/keys", body));
      setLimitUsd("");
      keys.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (prefix) => {
    setError(null);
    try {
      await client.del(`/v1/keys/${encodeURIComponent(prefix)}`);
    } catch (e) {
      return setError(e);
    }
    if (isSessionKey(session.label, prefix)) return signOut();
    if (created && created.prefix === prefix) setCreated(null);
    keys.reload();
  };

  const list = keys.data ? keys.data.keys : [];
  return html`
    <${PageTitle}>API keys<//>
    <p class="muted">A key signs a program in as this project. Revoked keys fail from their next request.</p>
    <form class="row create-key" onSubmit=${create} aria-label="Create a key" novalidate>
      <div class="field">
        <label for="key-limit">Spend limit in USD (optional)</label>
        <input id="key-limit" type="number" min="0.000001" step="any" inputmode="decimal" value=${limitUsd}
          aria-describedby="key-limit-help" onInput=${(e) => setLimitUsd(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="key-period">Per</label>
        <select id="key-period" value=${period} onChange=${(e) => setPeriod(e.currentTarget.value)}>
          <option value="day">UTC day</option>
          <option value="month">UTC month</option>
        </select>
      </div>
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Creating…" : "Create key"}</button>
      <p class="help" id="key-limit-help">The limit caps what the jobs submitted with the key may spend together; leave it empty for none.</p>
    </form>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    ${created ? html`<${NewKey} created=${created} onDone=${() => setCreated(null)} />` : null}
    <${ErrorBox} error=${keys.error} />
    ${keys.loading && !keys.data
      ? html`<${Loading} />`
      : list.length === 0
        ? html`<${Empty}>No active keys. Create one for each program that calls the API.</${Empty}>`
        : html`<div class="table-wrap">
            <table class="keys">
              <caption class="sr-only">Active API keys</caption>
              <thead><tr>
                <th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Last used</th>
                <th scope="col">Spend limit</th><th scope="col"><span class="sr-only">Actions</span></th>
              </tr></thead>
              <tbody>
                ${list.map((k) => {
                  const mine = isSessionKey(session.label, k.prefix);
                  return html`<tr key=${k.prefix}>
                    <td><code>${k.prefix}</code>${mine ? html` <span class="badge">this session</span>` : null}</td>
                    <td><time datetime=${k.created_at}>${when(k.created_at)}</time></td>
                    <td>${k.last_used_at ? html`<time datetime=${k.last_used_at}>${when(k.last_used_at)}</time>` : "never"}</td>
                    <td>${limitText(k)}</td>
                    <td>
                      ${mine ? html`<p class="key-warn" id=${"warn-" + k.prefix}>You are signed in with this key: revoking it signs you out.</p>` : null}
                      <span aria-label=${`key ${k.prefix}`} role="group">
                        <${ConfirmButton} label="Revoke" confirmLabel=${mine ? "Revoke and sign out" : "Yes, revoke"}
                          onConfirm=${() => revoke(k.prefix)} />
                      </span>
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>
          </div>`}`;
}
