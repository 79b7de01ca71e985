// The playground's form widgets (SPEC K6): one component per widget, and SchemaField,
// which picks the widget for a schema and recurses into objects and lists.
//
// Every widget gets {field, path, value, onChange, ctx}: `field` from describe(),
// `path` the keys of its value inside the inputs, `onChange(v)` with undefined for
// "empty" (the key is then left out, so `required` catches it), and `ctx`, the form's
// shared state: {client, set(path, value), errorsFor(pointer, deep),
// setLocal(pointer, message | null), setBusy(pointer, busy)}. A local error (bad JSON, a refused file) shows at once and
// blocks submitting; schema errors come from validating the whole inputs.
import { html, useEffect, useRef, useState } from "./ui.js";
import { Progress, useAsync, ErrorBox, Loading } from "./components.js";
import { bytes } from "./format.js";
import {
  FILE_WIDGETS, acceptAttr, describe, fieldId, fileLimitMb, initialValue, parseNumber,
  pointer, propertiesOf, refuseFile,
} from "./schema_form.js";

/** Text only screen readers get (the visible label is shorter). */
const Sr = ({ children }) => html`<span class="pg-sr">${children}</span>`;

/** The required mark: a star to see; controls carry aria-required for screen readers,
 * and a fieldset (which cannot) says it in its legend. */
function Req({ field, legend }) {
  if (!field.required) return null;
  return html`<span class="pg-req" aria-hidden="true"> *</span>${legend ? html`<${Sr}> (required)<//>` : null}`;
}

/** The description and help of a field, and its errors, with the ids controls point at. */
function Notes({ id, field, errors }) {
  const text = [field.description, field.help].filter(Boolean);
  return html`
    ${text.length ? html`<p class="help" id=${id + "-help"}>${text.join(" — ")}</p>` : null}
    ${errors.length
      ? html`<p class="field-error" id=${id + "-err"}>${errors.join(" ")}</p>`
      : null}`;
}

/** aria-describedby for a control: its help, then its error. */
function describedBy(id, field, errors) {
  const ids = [];
  if (field.description || field.help) ids.push(id + "-help");
  if (errors.length) ids.push(id + "-err");
  return ids.length ? ids.join(" ") : undefined;
}

function controlProps(id, field, errors) {
  return {
    id,
    "aria-describedby": describedBy(id, field, errors),
    "aria-invalid": errors.length ? "true" : undefined,
    "aria-required": field.required ? "true" : undefined,
  };
}

// -- simple fields ----------------------------------------------------------------------

function TextWidget({ field, path, value, onChange, ctx, long }) {
  const id = fieldId(path);
  const errors = ctx.errorsFor(pointer(path), long);
  const text = typeof value === "string" ? value : value === undefined || value === null ? "" : String(value);
  const onInput = (e) => onChange(e.currentTarget.value === "" ? undefined : e.currentTarget.value);
  const props = controlProps(id, field, errors);
  return html`<div class="field">
    <label for=${id}>${field.label}<${Req} field=${field} /></label>
    ${long
      ? html`<textarea ...${props} placeholder=${field.placeholder || undefined} value=${text} onInput=${onInput}></textarea>`
      : html`<input ...${props} type="text" placeholder=${field.placeholder || undefined} value=${text} onInput=${onInput} />`}
    <${Notes} id=${id} field=${field} errors=${errors} />
  </div>`;
}

function NumberWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const ptr = pointer(path);
  // The text as typed, so "1." or "abc" stay on screen while the value is not a number.
  const [text, setText] = useState(typeof value === "number" ? String(value) : typeof value === "string" ? value : "");
  useEffect(() => {
    if (typeof value === "number" && Number(text) !== value) setText(String(value));
    if (value === undefined && text !== "" && !Number.isNaN(parseNumber(text))) setText("");
  }, [value]);
  useEffect(() => () => ctx.setLocal(ptr, null), []);
  const errors = ctx.errorsFor(ptr, false);
  const onInput = (e) => {
    const t = e.currentTarget.value;
    setText(t);
    const n = parseNumber(t);
    if (Number.isNaN(n)) {
      ctx.setLocal(ptr, `“${t.trim()}” is not a number.`);
      onChange(t); // kept, so the field is not taken for empty
    } else {
      ctx.setLocal(ptr, null);
      onChange(n);
    }
  };
  const range = [
    field.min !== null ? `from ${field.min}` : null,
    field.max !== null ? `up to ${field.max}` : null,
  ].filter(Boolean).join(" ");
  const withRange = range ? { ...field, help: [field.help, `A ${field.type === "integer" ? "whole number" : "number"} ${range}.`].filter(Boolean).join(" ") } : field;
  return html`<div class="field">
    <label for=${id}>${field.label}<${Req} field=${field} /></label>
    <input ...${controlProps(id, withRange, errors)} type="text" class="pg-number"
      inputmode=${field.type === "integer" && (field.min ?? 0) >= 0 ? "numeric" : "decimal"}
      placeholder=${field.placeholder || undefined} value=${text} onInput=${onInput} />
    <${Notes} id=${id} field=${withRange} errors=${errors} />
  </div>`;
}

function CheckboxWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const errors = ctx.errorsFor(pointer(path), false);
  return html`<div class="field pg-check">
    <div class="row">
      <input ...${controlProps(id, field, errors)} type="checkbox" checked=${value === true}
        onChange=${(e) => onChange(e.currentTarget.checked)} />
      <label for=${id}>${field.label}<${Req} field=${field} /></label>
    </div>
    <${Notes} id=${id} field=${field} errors=${errors} />
  </div>`;
}

function SelectWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const errors = ctx.errorsFor(pointer(path), false);
  const options = field.options || [];
  const index = options.findIndex((o) => JSON.stringify(o) === JSON.stringify(value));
  return html`<div class="field">
    <label for=${id}>${field.label}<${Req} field=${field} /></label>
    <select ...${controlProps(id, field, errors)} value=${index < 0 ? "" : String(index)}
      onChange=${(e) => onChange(e.currentTarget.value === "" ? undefined : options[Number(e.currentTarget.value)])}>
      <option value="">${field.placeholder || "— choose —"}</option>
      ${options.map((o, i) => html`<option value=${String(i)}>${typeof o === "string" ? o : JSON.stringify(o)}</option>`)}
    </select>
    <${Notes} id=${id} field=${field} errors=${errors} />
  </div>`;
}

/** Any other shape: JSON typed by hand, checked as it is typed. */
function JsonWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const ptr = pointer(path);
  const [text, setText] = useState(value === undefined ? "" : JSON.stringify(value, null, 2));
  useEffect(() => () => ctx.setLocal(ptr, null), []);
  const errors = ctx.errorsFor(ptr, true);
  const onInput = (e) => {
    const t = e.currentTarget.value;
    setText(t);
    if (t.trim() === "") {
      ctx.setLocal(ptr, null);
      return onChange(undefined);
    }
    try {
      const v = JSON.parse(t);
      ctx.setLocal(ptr, null);
      onChange(v);
    } catch (err) {
      ctx.setLocal(ptr, `Not valid JSON: ${err.message}`);
      onChange(undefined);
    }
  };
  const saysJson = /json/i.test(field.description + field.help);
  const f = saysJson ? field : { ...field, help: [field.help, "As JSON."].filter(Boolean).join(" ") };
  return html`<div class="field">
    <label for=${id}>${field.label}<${Req} field=${field} /></label>
    <textarea ...${controlProps(id, f, errors)} class="mono" spellcheck=${false}
      placeholder=${field.placeholder || undefined} value=${text} onInput=${onInput}></textarea>
    <${Notes} id=${id} field=${f} errors=${errors} />
  </div>`;
}

// -- objects and lists ------------------------------------------------------------------

function ObjectWidget({ field, path, value, ctx }) {
  const id = fieldId(path);
  const errors = ctx.errorsFor(pointer(path), false);
  const obj = value && typeof value === "object" && !Array.isArray(value) ? value : {};
  return html`<fieldset class="pg-object" id=${id} aria-describedby=${describedBy(id, field, errors)}>
    <legend>${field.label}<${Req} field=${field} legend=${true} /></legend>
    <${Notes} id=${id} field=${field} errors=${errors} />
    ${propertiesOf(field.schema).map(
      ([k, sub, req]) => html`<${SchemaField} key=${k} schema=${sub} name=${k} required=${req}
        path=${[...path, k]} value=${obj[k]} ctx=${ctx} />`,
    )}
  </fieldset>`;
}

/** An array of simple values: one field per item, with add and remove. */
function ListWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const errors = ctx.errorsFor(pointer(path), false);
  const items = Array.isArray(value) ? value : [];
  const itemSchema = field.schema.items || {};
  const blank = () => {
    const d = initialValue(itemSchema);
    if (d !== undefined) return d;
    const w = describe(itemSchema, "", false).widget;
    return w === "checkbox" ? false : w === "text" || w === "long_text" ? "" : null;
  };
  // Keys that survive removals, so a removed item's neighbours keep their own state.
  const keys = useRef([]);
  const nextKey = useRef(0);
  while (keys.current.length < items.length) keys.current.push(nextKey.current++);
  keys.current.length = items.length;
  const addRef = useRef(null);
  const remove = (i) => {
    keys.current.splice(i, 1);
    const next = items.filter((_, j) => j !== i);
    onChange(next.length ? next : undefined);
    if (addRef.current) addRef.current.focus();
  };
  return html`<fieldset class="pg-list" id=${id} aria-describedby=${describedBy(id, field, errors)}>
    <legend>${field.label}<${Req} field=${field} legend=${true} /></legend>
    <${Notes} id=${id} field=${field} errors=${errors} />
    ${items.length === 0 ? html`<p class="muted">No items.</p>` : null}
    <ol class="pg-items">
      ${items.map(
        (v, i) => html`<li key=${keys.current[i]} class="pg-item">
          <${SchemaField} schema=${itemSchema} name="" label=${`${field.label} ${i + 1}`} required=${false}
            path=${[...path, i]} value=${v} ctx=${ctx} onChange=${(x) => ctx.set([...path, i], x === undefined ? blank() : x)} />
          <button type="button" onClick=${() => remove(i)} aria-label=${`Remove ${field.label} ${i + 1}`}>Remove</button>
        </li>`,
      )}
    </ol>
    <button type="button" ref=${addRef} onClick=${() => onChange([...items, blank()])}>Add ${field.label.toLowerCase()}</button>
  </fieldset>`;
}

// -- files ------------------------------------------------------------------------------

const KIND_OF = { image: "image", video: "video", audio: "audio" };

/** Whether a URL may be previewed: https, or this dashboard's own origin (signed links). */
export function previewable(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === "https:" || u.origin === location.origin || u.protocol === "blob:";
  } catch (_) {
    return false;
  }
}

/** An <img>, <video> or <audio> for a URL, by the widget's kind. */
export function MediaPreview({ kind, src, label }) {
  if (!src || !previewable(src)) return null;
  if (kind === "image") return html`<img class="pg-preview" src=${src} alt=${label} />`;
  if (kind === "video") return html`<video class="pg-preview" src=${src} controls preload="metadata" aria-label=${label}></video>`;
  if (kind === "audio") return html`<audio src=${src} controls preload="metadata" aria-label=${label}></audio>`;
  return null;
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(r.error || new Error("the file could not be read"));
    r.readAsDataURL(file);
  });
}

/**
 * Turns a chosen file into the value a field sends: uploaded to the drive first with
 * `upload: drive` ({drive_path}), else inline ({base64, media_type}).
 */
async function fileValue(field, file, client, onProgress, signal) {
  if (field.upload === "drive") {
    const form = new FormData();
    form.append("file", file, file.name);
    const up = await client.upload("/v1/drive/upload", form, { onProgress, signal });
    return {
      value: field.acceptsObject ? { drive_path: up.drive_path } : up.drive_path,
      note: `Uploaded to the drive as ${up.drive_path}`,
    };
  }
  const b64 = await readBase64(file);
  const type = file.type || "application/octet-stream";
  return {
    value: field.acceptsObject ? { base64: b64, media_type: type } : `data:${type};base64,${b64}`,
    note: `Sent inline (${bytes(file.size)})`,
  };
}

/** A drop-zone around a file input: the input itself stays, so the keyboard can use it. */
function DropZone({ id, label, field, multiple, onFiles, describedBy: desc, invalid }) {
  const [over, setOver] = useState(false);
  const onDrop = (e) => {
    e.preventDefault();
    setOver(false);
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) onFiles(multiple ? files : files.slice(0, 1));
  };
  const limit = fileLimitMb(field);
  return html`<div class=${"pg-drop" + (over ? " over" : "")}
      onDragOver=${(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave=${() => setOver(false)} onDrop=${onDrop}>
    <label for=${id}>${multiple ? "Choose or drop files" : "Choose or drop a file"}<${Sr}> for ${label}<//></label>
    <input id=${id} type="file" multiple=${!!multiple} accept=${acceptAttr(field.accept)}
      aria-describedby=${desc} aria-invalid=${invalid ? "true" : undefined}
      onChange=${(e) => {
        const files = [...(e.currentTarget.files || [])];
        e.currentTarget.value = ""; // choosing the same file again still reports it
        if (files.length) onFiles(files);
      }} />
    <span class="muted">${field.accept.length ? field.accept.join(", ") + " · " : ""}up to ${limit} MB${field.upload === "drive" ? ", uploaded to the drive" : ", sent inline"}</span>
  </div>`;
}

/** One file: a drop-zone, a URL field and a preview (image, video, audio, file). */
function FileWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const ptr = pointer(path);
  const kind = KIND_OF[field.widget] || "file";
  const [state, setState] = useState({ preview: null, note: "", progress: null, name: "" });
  const ctrl = useRef(null);
  const blob = useRef(null);
  const dropBlob = () => {
    if (blob.current) URL.revokeObjectURL(blob.current);
    blob.current = null;
  };
  useEffect(() => () => {
    if (ctrl.current) ctrl.current.abort();
    dropBlob();
    ctx.setLocal(ptr, null);
    ctx.setBusy(ptr, false);
  }, []);
  const errors = ctx.errorsFor(ptr, true);
  const url = typeof value === "string" && /^https?:\/\//i.test(value) ? value : value && typeof value.url === "string" ? value.url : "";

  const choose = async ([file]) => {
    if (ctrl.current) ctrl.current.abort();
    const refused = refuseFile(field, file);
    if (refused) {
      ctx.setLocal(ptr, refused);
      return;
    }
    ctx.setLocal(ptr, null);
    dropBlob();
    blob.current = URL.createObjectURL(file);
    const c = new AbortController();
    ctrl.current = c;
    setState({ preview: blob.current, note: "", progress: field.upload === "drive" ? { sent: 0, total: file.size } : null, name: file.name });
    ctx.setBusy(ptr, true);
    onChange(undefined);
    try {
      const out = await fileValue(field, file, ctx.client,
        (sent, total) => !c.signal.aborted && setState((s) => ({ ...s, progress: { sent, total } })), c.signal);
      if (c.signal.aborted) return;
      onChange(out.value);
      setState((s) => ({ ...s, note: out.note, progress: null }));
    } catch (e) {
      if (e.name === "AbortError") return;
      ctx.setLocal(ptr, `${file.name} could not be ${field.upload === "drive" ? "uploaded" : "read"}: ${e.message}`);
      setState((s) => ({ ...s, progress: null }));
    } finally {
      if (ctrl.current === c) {
        ctrl.current = null;
        ctx.setBusy(ptr, false);
      }
    }
  };
  const typeUrl = (e) => {
    const u = e.currentTarget.value.trim();
    if (ctrl.current) ctrl.current.abort();
    dropBlob();
    ctx.setLocal(ptr, null);
    setState({ preview: null, note: "", progress: null, name: "" });
    onChange(u === "" ? undefined : field.acceptsString ? u : { url: u });
  };
  const clear = () => {
    if (ctrl.current) ctrl.current.abort();
    dropBlob();
    ctx.setLocal(ptr, null);
    setState({ preview: null, note: "", progress: null, name: "" });
    onChange(undefined);
  };
  const desc = describedBy(id, field, errors);
  const preview = state.preview || (url && previewable(url) ? url : null);
  return html`<fieldset class="pg-file" id=${id} aria-describedby=${desc}>
    <legend>${field.label}<${Req} field=${field} legend=${true} /></legend>
    <${Notes} id=${id} field=${field} errors=${errors} />
    <${DropZone} id=${id + "-file"} label=${field.label} field=${field} onFiles=${choose}
      describedBy=${desc} invalid=${errors.length > 0} />
    <div class="field">
      <label for=${id + "-url"}>or a URL<${Sr}> for ${field.label}<//></label>
      <input id=${id + "-url"} type="url" inputmode="url" placeholder=${field.placeholder || "https://…"}
        value=${state.name ? "" : url} onInput=${typeUrl} aria-describedby=${desc}
        aria-invalid=${errors.length ? "true" : undefined} />
    </div>
    ${state.progress
      ? html`<${Progress} value=${state.progress.sent} max=${state.progress.total} label=${`Uploading ${state.name}`} />`
      : null}
    ${preview ? html`<${MediaPreview} kind=${kind} src=${preview} label=${`Preview of ${state.name || field.label}`} />` : null}
    ${state.name || value !== undefined
      ? html`<p class="row pg-file-status" role="status">
          <span>${state.name ? html`<strong>${state.name}</strong> ` : null}${state.progress ? "uploading…" : state.note || (value !== undefined && !url ? describeValue(value) : "")}</span>
          <button type="button" onClick=${clear}>Clear<${Sr}> ${field.label}<//></button>
        </p>`
      : null}
  </fieldset>`;
}

function describeValue(v) {
  if (typeof v === "string") return v;
  if (v && typeof v === "object") {
    if (v.drive_path) return `drive: ${v.drive_path}`;
    if (v.url) return v.url;
    if (v.base64) return `inline ${v.media_type || ""}`.trim();
  }
  return "";
}

/** Several files: each uploaded (or read inline) as it is added, removable one by one. */
function AttachmentsWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const ptr = pointer(path);
  const errors = ctx.errorsFor(ptr, true);
  const [items, setItems] = useState(() =>
    (Array.isArray(value) ? value : []).map((v, i) => ({ key: "v" + i, name: describeValue(v), value: v, progress: null })),
  );
  const itemsRef = useRef(items);
  const seq = useRef(0);
  const pending = useRef(new Map());
  const [url, setUrl] = useState("");
  useEffect(() => () => {
    for (const c of pending.current.values()) c.abort();
    ctx.setLocal(ptr, null);
    ctx.setBusy(ptr, false);
  }, []);
  const commit = (next) => {
    itemsRef.current = next;
    setItems(next);
    const values = next.filter((it) => it.value !== undefined).map((it) => it.value);
    onChange(values.length ? values : undefined);
    ctx.setBusy(ptr, next.some((it) => it.value === undefined));
  };
  const update = (key, patch) => commit(itemsRef.current.map((it) => (it.key === key ? { ...it, ...patch } : it)));
  const add = async (files) => {
    const refused = files.map((f) => refuseFile(field, f)).filter(Boolean);
    ctx.setLocal(ptr, refused.length ? refused.join(" ") : null);
    const ok = files.filter((f) => !refuseFile(field, f));
    const fresh = ok.map((f) => ({ key: "f" + seq.current++, name: f.name, file: f, value: undefined, progress: { sent: 0, total: f.size } }));
    if (!fresh.length) return;
    commit([...itemsRef.current, ...fresh]);
    await Promise.all(
      fresh.map(async (it) => {
        const c = new AbortController();
        pending.current.set(it.key, c);
        try {
          const out = await fileValue(field, it.file, ctx.client, (sent, total) => update(it.key, { progress: { sent, total } }), c.signal);
          if (!c.signal.aborted) update(it.key, { value: out.value, progress: null, note: out.note });
        } catch (e) {
          if (e.name !== "AbortError") {
            commit(itemsRef.current.filter((x) => x.key !== it.key));
            ctx.setLocal(ptr, `${it.name} could not be ${field.upload === "drive" ? "uploaded" : "read"}: ${e.message}`);
          }
        } finally {
          pending.current.delete(it.key);
        }
      }),
    );
  };
  const remove = (key) => {
    const c = pending.current.get(key);
    if (c) c.abort();
    commit(itemsRef.current.filter((x) => x.key !== key));
  };
  const addUrl = () => {
    const u = url.trim();
    if (!u) return;
    commit([...itemsRef.current, { key: "u" + seq.current++, name: u, value: { url: u }, progress: null }]);
    setUrl("");
  };
  const desc = describedBy(id, field, errors);
  return html`<fieldset class="pg-file" id=${id} aria-describedby=${desc}>
    <legend>${field.label}<${Req} field=${field} legend=${true} /></legend>
    <${Notes} id=${id} field=${field} errors=${errors} />
    <${DropZone} id=${id + "-file"} label=${field.label} field=${field} multiple=${true} onFiles=${add}
      describedBy=${desc} invalid=${errors.length > 0} />
    <div class="row">
      <label for=${id + "-url"}>Add a URL<${Sr}> to ${field.label}<//></label>
      <input id=${id + "-url"} type="url" value=${url} placeholder="https://…"
        onInput=${(e) => setUrl(e.currentTarget.value)}
        onKeyDown=${(e) => { if (e.key === "Enter") { e.preventDefault(); addUrl(); } }} />
      <button type="button" onClick=${addUrl}>Add</button>
    </div>
    ${items.length
      ? html`<ul class="pg-items">
          ${items.map((it) => html`<li key=${it.key} class="pg-item">
            <span><strong>${it.name}</strong> <span class="muted">${it.progress ? "" : it.note || describeValue(it.value)}</span></span>
            ${it.progress ? html`<${Progress} value=${it.progress.sent} max=${it.progress.total} label=${`Uploading ${it.name}`} />` : null}
            <button type="button" onClick=${() => remove(it.key)}>Remove<${Sr}> ${it.name}<//></button>
          </li>`)}
        </ul>`
      : html`<p class="muted">No files yet.</p>`}
  </fieldset>`;
}

// -- the drive picker -------------------------------------------------------------------

function DriveBrowser({ client, onPick, label }) {
  const [prefix, setPrefix] = useState("");
  const { data, error, loading } = useAsync(
    (signal) => client.get("/v1/drive/list", { query: { prefix }, signal }),
    [prefix],
  );
  const up = prefix.replace(/[^/]+\/$/, "");
  return html`<div class="pg-drive card" role="group" aria-label=${`Drive files for ${label}`}>
    <p class="row"><span>drive/<code>${prefix}</code></span>
      ${prefix ? html`<button type="button" onClick=${() => setPrefix(up)}>Up one folder</button>` : null}</p>
    <${ErrorBox} error=${error} />
    ${loading && !data ? html`<${Loading} />` : null}
    ${data
      ? html`<ul class="pg-drive-list">
          ${(data.folders || []).map((f) => html`<li key=${"d" + f.path}>
            <button type="button" class="link" onClick=${() => setPrefix(f.path)}>${f.name}/</button></li>`)}
          ${(data.files || []).map((f) => html`<li key=${"f" + f.path}>
            <button type="button" class="link" onClick=${() => onPick(f.path)}>${f.name}</button>
            <span class="muted"> ${bytes(f.bytes)}${f.content_type ? " · " + f.content_type : ""}</span></li>`)}
          ${!(data.folders || []).length && !(data.files || []).length ? html`<li class="muted">This folder is empty.</li>` : null}
        </ul>`
      : null}
  </div>`;
}

/** A drive path, typed or picked from the project's drive. */
function DriveFileWidget({ field, path, value, onChange, ctx }) {
  const id = fieldId(path);
  const errors = ctx.errorsFor(pointer(path), true);
  const [open, setOpen] = useState(false);
  const input = useRef(null);
  const text = typeof value === "string" ? value : value && typeof value.drive_path === "string" ? value.drive_path : "";
  const set = (p) => onChange(p === "" ? undefined : field.acceptsString ? p : { drive_path: p });
  return html`<div class="field">
    <label for=${id}>${field.label}<${Req} field=${field} /></label>
    <div class="row">
      <input ...${controlProps(id, field, errors)} ref=${input} type="text" class="mono"
        placeholder=${field.placeholder || "uploads/photo.png"} value=${text}
        onInput=${(e) => set(e.currentTarget.value.trim())} />
      <button type="button" aria-expanded=${open} aria-controls=${id + "-browse"} onClick=${() => setOpen(!open)}>
        ${open ? "Close drive" : "Browse drive"}<${Sr}> for ${field.label}<//>
      </button>
    </div>
    <div id=${id + "-browse"}>
      ${open
        ? html`<${DriveBrowser} client=${ctx.client} label=${field.label} onPick=${(p) => {
            set(p);
            setOpen(false);
            if (input.current) input.current.focus();
          }} />`
        : null}
    </div>
    <${Notes} id=${id} field=${field} errors=${errors} />
  </div>`;
}

// -- dispatch ---------------------------------------------------------------------------

const BY_WIDGET = {
  text: TextWidget,
  long_text: (p) => html`<${TextWidget} ...${p} long=${true} />`,
  number: NumberWidget,
  checkbox: CheckboxWidget,
  select: SelectWidget,
  json: JsonWidget,
  object: ObjectWidget,
  list: ListWidget,
  drive_file: DriveFileWidget,
  attachments: AttachmentsWidget,
};

/**
 * The widget for one schema. Changes go to `ctx.set(path, value)` (the form applies them
 * to its latest inputs, so a late upload never writes over a newer edit) unless
 * `onChange` says otherwise.
 * @param {{schema: object, name: string, label?: string, required: boolean, path: (string|number)[], value: any, onChange?: (v: any) => void, ctx: object}} props
 */
export function SchemaField({ schema, name, label, required, path, value, onChange, ctx }) {
  const field = describe(schema, name, required);
  if (label && !(schema && schema.title)) field.label = label;
  const W = FILE_WIDGETS.has(field.widget) ? FileWidget : BY_WIDGET[field.widget] || JsonWidget;
  const change = onChange || ((v) => ctx.set(path, v));
  return html`<${W} field=${field} path=${path} value=${value} onChange=${change} ctx=${ctx} />`;
}
