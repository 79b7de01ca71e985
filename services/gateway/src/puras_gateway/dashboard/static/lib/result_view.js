// A job's result shown against the skill's output_schema: images, video and audio the
// result points at are shown inline (drive files through a signed link), objects as
// labelled sections, everything else as JSON. Used by the playground and the job page.
import { html, useEffect, useMemo } from "./ui.js";
import { JsonView, useAsync } from "./components.js";
import { hints, humanize, mainType } from "./schema_form.js";

const EXT = {
  image: ["png", "jpg", "jpeg", "gif", "webp", "avif", "bmp", "svg"],
  video: ["mp4", "webm", "mov", "m4v", "ogv"],
  audio: ["mp3", "wav", "ogg", "oga", "m4a", "aac", "flac", "opus"],
};

function kindOfMedia(type) {
  const t = typeof type === "string" ? type.toLowerCase() : "";
  for (const k of ["image", "video", "audio"]) if (t.startsWith(k + "/")) return k;
  return null;
}

function kindOfName(name) {
  const m = /\.([a-z0-9]+)(?:$|[?#])/i.exec(String(name || ""));
  if (!m) return null;
  const ext = m[1].toLowerCase();
  for (const [k, list] of Object.entries(EXT)) if (list.includes(ext)) return k;
  return null;
}

/** What the schema says a value is: image, video, audio, or null. */
function kindOfSchema(schema) {
  if (!schema || typeof schema !== "object") return null;
  const w = hints(schema).widget;
  if (w === "image" || w === "video" || w === "audio") return w;
  const k = kindOfMedia(schema.contentMediaType);
  if (k) return k;
  for (const alt of schema.oneOf || schema.anyOf || []) {
    const a = kindOfSchema(alt);
    if (a) return a;
  }
  return null;
}

function pathOf(url) {
  try {
    return new URL(url).pathname;
  } catch (_) {
    return "";
  }
}

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Where a value's file is, if it is a file: {drive} | {url} | {base64, type}, with the
 * kind of media it is (from the schema, the file's media type, or its extension).
 */
export function fileOf(value, schema) {
  const fromSchema = kindOfSchema(schema);
  if (typeof value === "string") {
    if (/^https?:\/\//i.test(value)) {
      const kind = fromSchema || kindOfName(pathOf(value));
      return kind ? { url: value, label: value, kind } : null;
    }
    // A bare string is taken for a drive path only when it could be one: no scheme, no
    // whitespace (a sentence naming "cat.png" is text), not too long.
    if (/^[a-z][a-z0-9+.-]*:/i.test(value) || /\s/.test(value) || value.length > 1024) return null;
    const kind = fromSchema || kindOfName(value);
    return kind ? { drive: value, label: value, kind } : null;
  }
  if (!isObj(value)) return null;
  const type = value.media_type || value.content_type || value.mime_type;
  if (typeof value.drive_path === "string") {
    const kind = fromSchema || kindOfMedia(type) || kindOfName(value.drive_path);
    return kind ? { drive: value.drive_path, label: value.drive_path, kind } : null;
  }
  if (typeof value.url === "string" && /^https?:\/\//i.test(value.url)) {
    const kind = fromSchema || kindOfMedia(type) || kindOfName(pathOf(value.url));
    return kind ? { url: value.url, label: value.url, kind } : null;
  }
  if (typeof value.base64 === "string") {
    const kind = kindOfMedia(type) || fromSchema;
    return kind ? { base64: value.base64, type: type || `${kind}/*`, label: `inline ${type || kind}`, kind } : null;
  }
  return null;
}

/** The schema of an object's property (or an array's item), {} when it says nothing. */
function childSchema(schema, key) {
  if (!isObj(schema)) return {};
  if (typeof key === "number") {
    if (Array.isArray(schema.prefixItems) && schema.prefixItems[key]) return schema.prefixItems[key];
    return isObj(schema.items) ? schema.items : {};
  }
  if (isObj(schema.properties) && isObj(schema.properties[key])) return schema.properties[key];
  return isObj(schema.additionalProperties) ? schema.additionalProperties : {};
}

/** Whether anything in the value is a file to show (else the whole value is JSON). */
function hasMedia(value, schema, depth = 0) {
  if (depth > 8) return false;
  if (fileOf(value, schema)) return true;
  if (Array.isArray(value)) return value.some((v, i) => hasMedia(v, childSchema(schema, i), depth + 1));
  if (isObj(value)) return Object.entries(value).some(([k, v]) => hasMedia(v, childSchema(schema, k), depth + 1));
  return false;
}

/** Only https, or this dashboard's own origin (where signed drive links are). */
function safeSrc(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === "https:" || u.origin === location.origin ? u.href : null;
  } catch (_) {
    return null;
  }
}

function Media({ kind, src, label }) {
  if (kind === "image") return html`<img class="rv-media" src=${src} alt=${label} />`;
  if (kind === "video") return html`<video class="rv-media" src=${src} controls preload="metadata" aria-label=${label}></video>`;
  return html`<audio src=${src} controls preload="metadata" aria-label=${label}></audio>`;
}

function DriveMedia({ file, client }) {
  const { data, error } = useAsync(
    (signal) => client.get("/v1/drive/sign", { query: { path: file.drive }, signal }),
    [file.drive],
  );
  const src = data ? safeSrc(data.url || data.signed_url) : null;
  return html`<figure class="rv-file">
    ${src ? html`<${Media} kind=${file.kind} src=${src} label=${file.drive} />` : null}
    <figcaption>
      <code>drive/${file.drive}</code>
      ${src ? html` · <a href=${src} target="_blank" rel="noopener noreferrer">open</a>` : null}
      ${error ? html` <span class="field-error">(no link: ${error.message})</span>` : null}
    </figcaption>
  </figure>`;
}

function InlineMedia({ file }) {
  // data: is not a media source under the CSP, a blob: URL is (and is same-document).
  const src = useMemo(() => {
    try {
      const bin = atob(file.base64);
      const buf = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
      return URL.createObjectURL(new Blob([buf], { type: file.type }));
    } catch (_) {
      return null;
    }
  }, [file.base64, file.type]);
  useEffect(() => () => src && URL.revokeObjectURL(src), [src]);
  return html`<figure class="rv-file">
    ${src ? html`<${Media} kind=${file.kind} src=${src} label=${file.label} />` : null}
    <figcaption><code>${file.label}</code></figcaption>
  </figure>`;
}

function FileView({ file, client }) {
  if (file.drive !== undefined) return html`<${DriveMedia} file=${file} client=${client} />`;
  if (file.base64 !== undefined) return html`<${InlineMedia} file=${file} />`;
  const src = safeSrc(file.url);
  return html`<figure class="rv-file">
    ${src ? html`<${Media} kind=${file.kind} src=${src} label=${file.url} />` : null}
    <figcaption><code>${file.url}</code></figcaption>
  </figure>`;
}

function Node({ value, schema, client, label, depth }) {
  const file = fileOf(value, schema);
  if (file) return html`<${FileView} file=${file} client=${client} />`;
  if (!hasMedia(value, schema)) return html`<${JsonView} value=${value} label=${label} />`;
  if (Array.isArray(value)) {
    return html`<ol class="rv-list">
      ${value.map((v, i) => html`<li key=${i}><${Node} value=${v} schema=${childSchema(schema, i)} client=${client}
        label=${`${label} ${i + 1}`} depth=${depth + 1} /></li>`)}
    </ol>`;
  }
  const H = depth < 2 ? "h3" : "h4";
  return html`<div class="rv-object">
    ${Object.entries(value).map(([k, v]) => {
      const sub = childSchema(schema, k);
      const name = typeof sub.title === "string" && sub.title ? sub.title : humanize(k);
      return html`<section key=${k} class="rv-section" aria-label=${name}>
        <${H} class="rv-label">${name}${mainType(sub) ? html` <span class="muted">${mainType(sub)}</span>` : null}<//>
        <${Node} value=${v} schema=${sub} client=${client} label=${name} depth=${depth + 1} />
      </section>`;
    })}
  </div>`;
}

/**
 * A job's result, walked alongside its output_schema.
 * @param {{value: any, schema?: object, client: object}} props
 */
export function ResultView({ value, schema, client }) {
  const s = isObj(schema) ? schema : {};
  if (value === undefined || value === null) return html`<${JsonView} value=${value ?? null} label="Result" />`;
  const media = hasMedia(value, s);
  return html`<div class="rv">
    <${Node} value=${value} schema=${s} client=${client} label="Result" depth=${0} />
    ${media
      ? html`<details class="rv-raw"><summary>Result as JSON</summary><${JsonView} value=${value} label="Result JSON" /></details>`
      : null}
  </div>`;
}
