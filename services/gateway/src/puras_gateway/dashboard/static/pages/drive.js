// The project's drive, one folder at a time ("#/drive?prefix=photos/2024/"): browse,
// upload into the folder shown (one file after another, each with its progress), download
// through a signed link, share, zip a folder, see which job wrote a file, delete.
import { html, useEffect, useRef, useState } from "../lib/ui.js";
import {
  ConfirmButton,
  CopyButton,
  Empty,
  ErrorBox,
  Loading,
  PageTitle,
  Progress,
  useAsync,
  useClient,
} from "../lib/components.js";
import { href } from "../lib/router.js";
import { bytes, when } from "../lib/format.js";

/** "" (the root) or "a/b/", as the API lists it. */
function folderOf(raw) {
  const parts = (raw || "").split("/").filter((p) => p && p !== ".");
  return parts.length ? parts.join("/") + "/" : "";
}

/** Saves what a URL points at under `name`, as a link the user clicked would. */
function saveAs(url, name) {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  // `download` only works for this origin; another (a gateway behind another name) opens a tab.
  if (new URL(url, location.href).origin !== location.origin) {
    a.target = "_blank";
    a.rel = "noopener";
  }
  a.click();
}

function Breadcrumbs({ prefix }) {
  const parts = prefix.split("/").filter(Boolean);
  const crumbs = [{ label: "Drive", prefix: "" }];
  parts.forEach((p, i) => crumbs.push({ label: p, prefix: parts.slice(0, i + 1).join("/") + "/" }));
  return html`<nav aria-label="Folder" class="crumbs">
    <ol>
      ${crumbs.map((c, i) =>
        i === crumbs.length - 1
          ? html`<li key=${c.prefix}><span aria-current="location">${c.label}</span></li>`
          : html`<li key=${c.prefix}><a href=${href("/drive", { prefix: c.prefix })}>${c.label}</a></li>`,
      )}
    </ol>
  </nav>`;
}

/** Files dropped or chosen go up one after another into the folder shown when they were added. */
function Uploader({ prefix, onUploaded }) {
  const client = useClient();
  const [items, setItems] = useState([]);
  const [over, setOver] = useState(false);
  const queue = useRef([]);
  const running = useRef(false);
  const seq = useRef(0);
  const live = useRef(true);
  useEffect(() => () => (live.current = false), []);

  const update = (id, patch) => live.current && setItems((list) => list.map((it) => (it.id === id ? { ...it, ...patch } : it)));

  const pump = async () => {
    if (running.current) return;
    running.current = true;
    while (queue.current.length && live.current) {
      const { id, file, dest } = queue.current.shift();
      update(id, { status: "uploading" });
      const form = new FormData();
      // `path` before `file`: the drive then streams the bytes straight to storage.
      form.append("path", dest + file.name);
      form.append("file", file, file.name);
      try {
        const r = await client.upload("/v1/drive/upload", form, {
          onProgress: (sent, total) => update(id, { sent, total }),
        });
        // The progress counted the whole multipart body; the file's own size is what was stored.
        update(id, { status: "done", stored: r && r.bytes !== undefined ? r.bytes : file.size });
        onUploaded();
      } catch (e) {
        update(id, { status: "failed", error: e });
      }
    }
    running.current = false;
  };

  const add = (fileList) => {
    const files = [...(fileList || [])];
    if (!files.length) return;
    const added = files.map((file) => ({ id: ++seq.current, file, dest: prefix }));
    queue.current.push(...added);
    setItems((list) => [
      ...list.filter((it) => it.status !== "done"),
      ...added.map((a) => ({ id: a.id, name: a.file.name, dest: a.dest, sent: 0, total: a.file.size, status: "waiting" })),
    ]);
    pump();
  };

  const onDrop = (ev) => {
    ev.preventDefault();
    setOver(false);
    add(ev.dataTransfer && ev.dataTransfer.files);
  };
  const onDragOver = (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
    setOver(true);
  };

  return html`<section aria-labelledby="upload-h" class=${"dropzone" + (over ? " over" : "")}
      onDragOver=${onDragOver} onDragLeave=${() => setOver(false)} onDrop=${onDrop}>
    <h2 id="upload-h">Upload</h2>
    <div class="field">
      <label for="drive-files">Files to upload into ${prefix || "the drive's root"}</label>
      <input id="drive-files" type="file" multiple
        onChange=${(e) => {
          add(e.currentTarget.files);
          e.currentTarget.value = "";
        }} />
      <span class="help">Or drop files here. Up to 50 MiB each; a file of the same name is replaced.</span>
    </div>
    ${items.length
      ? html`<ul class="uploads" aria-live="polite">
          ${items.map(
            (it) => html`<li key=${it.id}>
              <span class="upload-name">${it.dest}${it.name}</span>
              ${it.status === "failed"
                ? html`<${ErrorBox} error=${it.error} />`
                : it.status === "done"
                  ? html`<span class="st-ok">Uploaded ${bytes(it.stored)}</span>`
                  : it.status === "waiting"
                    ? html`<span class="muted">Waiting</span>`
                    : html`<${Progress} value=${it.sent} max=${it.total} label=${`Uploading ${it.name}`} />`}
            </li>`,
          )}
        </ul>`
      : null}
  </section>`;
}

function Origin({ path }) {
  const client = useClient();
  const o = useAsync((signal) => client.get("/v1/drive/origin", { query: { path }, signal }), [path]);
  if (o.error) return html`<${ErrorBox} error=${o.error} />`;
  if (!o.data) return html`<${Loading} label="Looking up who wrote it…" />`;
  const d = o.data;
  if (!d.job_id) return html`<p>Uploaded directly${d.created_at ? html`, <time datetime=${d.created_at}>${when(d.created_at)}</time>` : null}.</p>`;
  return html`<p>
    Written by job <a class="mono" href=${href("/jobs/" + encodeURIComponent(d.job_id))}>${d.job_id}</a>
    ${d.skill_name ? html` of skill <strong>${d.skill_name}</strong>` : null}
    ${d.tool ? html` (through ${d.tool})` : null}${d.created_at ? html`, <time datetime=${d.created_at}>${when(d.created_at)}</time>` : null}.
  </p>`;
}

function Share({ share }) {
  return html`<div>
    <p>Anyone holding this link can read the file, with no key, until <time datetime=${share.expires_at}>${when(share.expires_at)}</time>.</p>
    <div class="row">
      <code class="share-url" data-copy-source=${share.url}>${share.url}</code>
      <${CopyButton} text=${share.url} label="Copy link" />
    </div>
  </div>`;
}

function FileRow({ f, onChanged, setError }) {
  const client = useClient();
  const [open, setOpen] = useState(null); // null | "origin" | {share}
  const [busy, setBusy] = useState(false);
  const q = { query: { path: f.path } };
  const act = async (fn) => {
    setError(null);
    setBusy(true);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const download = () =>
    act(async () => {
      const s = await client.get("/v1/drive/sign", q);
      saveAs(s.url, f.name);
    });
  const share = () => act(async () => setOpen({ share: await client.post("/v1/drive/share", undefined, q) }));
  const remove = () => act(async () => {
    await client.del("/v1/drive/object", q);
    onChanged();
  });
  const detailId = "detail-" + f.path;
  return html`
    <tr>
      <td class="name"><span class="file-icon" aria-hidden="true">▤</span> ${f.name}</td>
      <td class="num">${bytes(f.bytes)}</td>
      <td class="wide-only">${f.content_type || "–"}</td>
      <td class="wide-only"><time datetime=${f.updated_at}>${when(f.updated_at)}</time></td>
      <td>
        <div class="row actions" role="group" aria-label=${`file ${f.name}`}>
          <button type="button" disabled=${busy} onClick=${download}>Download</button>
          <button type="button" disabled=${busy} onClick=${share}>Share</button>
          <button type="button" aria-expanded=${open === "origin"} aria-controls=${detailId}
            onClick=${() => setOpen(open === "origin" ? null : "origin")}>Origin</button>
          <${ConfirmButton} label="Delete" confirmLabel=${`Yes, delete ${f.name}`} onConfirm=${remove} />
        </div>
      </td>
    </tr>
    ${open
      ? html`<tr class="detail"><td colspan="5" id=${detailId}>
          ${open === "origin" ? html`<${Origin} path=${f.path} />` : html`<${Share} share=${open.share} />`}
          <button type="button" class="link" onClick=${() => setOpen(null)}>Close</button>
        </td></tr>`
      : null}`;
}

async function saveZip(client, prefix) {
  const resp = await client.request("GET", "/v1/drive/zip", { query: { prefix }, raw: true });
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const seg = prefix.split("/").filter(Boolean).pop() || "drive";
  saveAs(url, `${seg}.zip`);
  // The download has its own copy once started; the object URL is only its source.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function FolderRow({ d, onChanged, setError, zip }) {
  const client = useClient();
  const remove = async () => {
    setError(null);
    try {
      await client.del("/v1/drive/object", { query: { path: d.path } });
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return html`<tr>
    <td class="name"><span class="file-icon" aria-hidden="true">▸</span> <a href=${href("/drive", { prefix: d.path })}>${d.name}/</a></td>
    <td class="num">–</td>
    <td class="wide-only">folder</td>
    <td class="wide-only"></td>
    <td>
      <div class="row actions" role="group" aria-label=${`folder ${d.name}`}>
        <button type="button" onClick=${() => zip(d.path)}>Download zip</button>
        <${ConfirmButton} label="Delete" confirmLabel=${`Yes, delete ${d.name} and everything in it`} onConfirm=${remove} />
      </div>
    </td>
  </tr>`;
}

export default function DrivePage({ query }) {
  const client = useClient();
  const prefix = folderOf(query.get("prefix"));
  const listing = useAsync((signal) => client.get("/v1/drive/list", { query: { prefix }, signal }), [prefix]);
  const [error, setError] = useState(null);
  const [zipping, setZipping] = useState(null);
  useEffect(() => setError(null), [prefix]);
  const zip = async (p) => {
    setError(null);
    setZipping(p);
    try {
      await saveZip(client, p);
    } catch (e) {
      setError(e);
    } finally {
      setZipping(null);
    }
  };
  const data = listing.data && listing.data.prefix === prefix ? listing.data : null;
  const empty = data && !data.folders.length && !data.files.length;
  return html`
    <${PageTitle}
      actions=${html`<button type="button" disabled=${zipping !== null || empty} onClick=${() => zip(prefix)}>
        ${prefix ? "Download this folder as zip" : "Download the drive as zip"}</button>`}>Drive<//>
    <${Breadcrumbs} prefix=${prefix} />
    ${zipping !== null ? html`<p role="status" class="muted">Preparing ${zipping || "the drive"} as a zip…</p>` : null}
    <${ErrorBox} error=${error} onDismiss=${() => setError(null)} />
    <${ErrorBox} error=${listing.error} />
    ${!data
      ? listing.error
        ? null
        : html`<${Loading} />`
      : empty
        ? html`<${Empty}>${prefix ? "This folder is empty." : "The drive is empty."} Upload files below, or write them to ./drive/ from a job.</${Empty}>`
        : html`<div class="table-wrap">
            <table class="drive">
              <caption class="sr-only">Folders and files in ${prefix || "the drive's root"}</caption>
              <thead><tr>
                <th scope="col">Name</th><th scope="col" class="num">Size</th>
                <th scope="col" class="wide-only">Type</th><th scope="col" class="wide-only">Updated</th>
                <th scope="col"><span class="sr-only">Actions</span></th>
              </tr></thead>
              <tbody>
                ${data.folders.map((d) => html`<${FolderRow} key=${"d:" + d.path} d=${d} onChanged=${listing.reload} setError=${setError} zip=${zip} />`)}
                ${data.files.map((f) => html`<${FileRow} key=${"f:" + f.path} f=${f} onChanged=${listing.reload} setError=${setError} />`)}
              </tbody>
            </table>
          </div>`}
    <${Uploader} prefix=${prefix} onUploaded=${listing.reload} />`;
}
