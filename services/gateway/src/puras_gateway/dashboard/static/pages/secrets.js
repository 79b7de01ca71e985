// The project's secrets, by name only: the API never returns a value, and this page never
// shows one either — the value field is a password field, emptied once the value is saved.
import { html, useRef, useState } from "../lib/ui.js";
import { ConfirmButton, Empty, ErrorBox, Loading, PageTitle, useAsync, useClient } from "../lib/components.js";
import { when } from "../lib/format.js";

// The API's name rule (docs/api.md, Secrets): checked here too so a typo is caught before
// the request, but the API's answer stays the authority.
const NAME_RE = /^[A-Z_][A-Z0-9_]*$/;
const RESERVED = new Set(["PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR", "PWD", "SHELL"]);

/** What is wrong with a secret name, or null. */
export function nameProblem(name) {
  if (!name) return "Give the secret a name.";
  if (name.length > 128) return "A name is at most 128 characters.";
  if (!NAME_RE.test(name)) {
    const hint = name.toUpperCase().replace(/[^A-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1");
    return `Use capital letters, digits and underscores, not starting with a digit (e.g. ${hint.slice(0, 128)}).`;
  }
  if (name.startsWith("PURAS_") || RESERVED.has(name)) return `${name} is set by the runner itself: choose another name.`;
  return null;
}

function SetForm({ onSaved, name, setName, nameRef, valueRef }) {
  const client = useClient();
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  const problem = nameProblem(name);
  const submit = async (ev) => {
    ev.preventDefault();
    setTouched(true);
    setSaved(null);
    const value = valueRef.current.value;
    if (problem) return nameRef.current.focus();
    if (!value) return setError(new Error("Give the secret a value."));
    setBusy(true);
    setError(null);
    try {
      await client.put(`/v1/secrets/${encodeURIComponent(name)}`, { value });
      // The value leaves the page with the request: nothing keeps it afterwards.
      valueRef.current.value = "";
      setSaved(name);
      setName("");
      setTouched(false);
      onSaved();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const showProblem = touched && problem;
  return html`<form class="card secret-form" onSubmit=${submit} aria-labelledby="set-h" novalidate>
    <h2 id="set-h">Set a secret</h2>
    <div class="field">
      <label for="secret-name">Name</label>
      <input id="secret-name" ref=${nameRef} value=${name} autocomplete="off" spellcheck=${false}
        maxlength="128" aria-invalid=${showProblem ? "true" : undefined}
        aria-describedby=${showProblem ? "secret-name-help secret-name-error" : "secret-name-help"}
        onInput=${(e) => setName(e.currentTarget.value)} onBlur=${() => name && setTouched(true)} />
      <span class="help" id="secret-name-help">Capital letters, digits and underscores, e.g. OPENAI_API_KEY. Setting an existing name replaces its value.</span>
      ${showProblem ? html`<span class="field-error" id="secret-name-error">${problem}</span>` : null}
    </div>
    <div class="field">
      <label for="secret-value">Value</label>
      <input id="secret-value" ref=${valueRef} type="password" autocomplete="new-password" spellcheck=${false} />
      <span class="help">Stored encrypted; jobs read it as an environment variable. It is never shown again.</span>
    </div>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    ${saved ? html`<p role="status" class="st-ok">Saved ${saved}.</p>` : null}
    <button type="submit" class="primary" disabled=${busy}>${busy ? "Saving…" : "Save secret"}</button>
  </form>`;
}

export default function SecretsPage() {
  const client = useClient();
  const secrets = useAsync((signal) => client.get("/v1/secrets", { signal }), []);
  const [error, setError] = useState(null);
  const nameRef = useRef(null);
  const valueRef = useRef(null);
  const remove = async (name) => {
    setError(null);
    try {
      await client.del(`/v1/secrets/${encodeURIComponent(name)}`);
      secrets.reload();
    } catch (e) {
      setError(e);
    }
  };
  const [name, setName] = useState("");
  // Replacing a value starts from the form with the name filled in.
  const replace = (n) => {
    setName(n);
    valueRef.current.focus();
  };
  const list = secrets.data ? secrets.data.secrets : [];
  return html`
    <${PageTitle}>Secrets<//>
    <p class="muted">Values the project's jobs get as environment variables. Only names are listed: a value cannot be read back, only replaced.</p>
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    <${ErrorBox} error=${secrets.error} />
    <section aria-labelledby="list-h">
      <h2 id="list-h">Names</h2>
      ${secrets.loading && !secrets.data
        ? html`<${Loading} />`
        : list.length === 0
          ? html`<${Empty}>No secrets yet. Set one below; jobs started afterwards see it.</${Empty}>`
          : html`<div class="table-wrap">
              <table class="secrets">
                <caption class="sr-only">Secret names</caption>
                <thead><tr><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Updated</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
                <tbody>
                  ${list.map(
                    (s) => html`<tr key=${s.name}>
                      <td><code>${s.name}</code></td>
                      <td><time datetime=${s.created_at}>${when(s.created_at)}</time></td>
                      <td><time datetime=${s.updated_at}>${when(s.updated_at)}</time></td>
                      <td>
                        <div class="row">
                          <button type="button" aria-label=${`Replace ${s.name}`} onClick=${() => replace(s.name)}>Replace</button>
                          <${ConfirmButton} label="Delete" confirmLabel=${`Yes, delete ${s.name}`} onConfirm=${() => remove(s.name)} />
                        </div>
                      </td>
                    </tr>`,
                  )}
                </tbody>
              </table>
            </div>`}
    </section>
    <${SetForm} onSaved=${secrets.reload} name=${name} setName=${setName} nameRef=${nameRef} valueRef=${valueRef} />`;
}
