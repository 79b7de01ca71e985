// From a skill's input_schema to the fields of a form (SPEC K6). Pure functions over
// plain JSON, with no DOM, so the rules can be checked outside a browser.

/** The widgets the playground knows; any other x-puras.widget falls back to the schema. */
export const WIDGETS = new Set([
  "image", "video", "audio", "file", "drive_file", "attachments",
  "text", "long_text", "select", "number", "checkbox", "json",
]);

/** Widgets whose value is one file (a URL string or a file object). */
export const FILE_WIDGETS = new Set(["image", "video", "audio", "file"]);

const SIMPLE = new Set(["string", "number", "integer", "boolean"]);

/** The x-puras block, or {} (a non-object block is ignored, as unknown fields are). */
export function hints(schema) {
  const x = schema && schema["x-puras"];
  return x && typeof x === "object" && !Array.isArray(x) ? x : {};
}

/** The schema's main type: `type` itself, the first non-null of a type list, else null. */
export function mainType(schema) {
  if (!schema || typeof schema !== "object") return null;
  const t = schema.type;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) return t.find((x) => x !== "null") || null;
  if (Array.isArray(schema.enum)) return null;
  if (schema.properties) return "object";
  if (schema.items) return "array";
  return null;
}

/** The subschemas of oneOf/anyOf (a file input is often `oneOf: [string, object]`). */
function alternatives(schema) {
  return (schema && (schema.oneOf || schema.anyOf)) || [];
}

/** Whether the schema takes values of JSON type `type` (no `type` at all takes any). */
export function acceptsType(schema, type) {
  if (!schema || typeof schema !== "object") return true;
  const t = schema.type;
  if (t === undefined) {
    const alts = alternatives(schema);
    return alts.length === 0 || alts.some((a) => acceptsType(a, type));
  }
  return t === type || (Array.isArray(t) && t.includes(type));
}

/** Whether the schema takes a bare string (so a typed URL is sent as one). */
export function acceptsString(schema) {
  return acceptsType(schema, "string");
}

/** The widget for a schema: x-puras.widget, else contentMediaType, else its type. */
export function widgetFor(schema) {
  const w = hints(schema).widget;
  if (typeof w === "string" && WIDGETS.has(w)) return w;
  const media = typeof schema?.contentMediaType === "string" ? schema.contentMediaType : "";
  for (const kind of ["image", "video", "audio"]) if (media.startsWith(kind + "/")) return kind;
  if (Array.isArray(schema?.enum) && schema.enum.length) return "select";
  const type = mainType(schema);
  if (type === "boolean") return "checkbox";
  if (type === "number" || type === "integer") return "number";
  if (type === "string") return "text";
  if (type === "object" && schema.properties && typeof schema.properties === "object") return "object";
  if (type === "array" && isSimpleList(schema)) return "list";
  return "json";
}

function isSimpleList(schema) {
  const items = schema.items;
  if (!items || typeof items !== "object" || Array.isArray(items) || schema.prefixItems) return false;
  const w = widgetFor(items);
  return w === "text" || w === "long_text" || w === "number" || w === "checkbox" || w === "select";
}

/** Whether the object's schema lists `name` as required. */
export function isRequired(schema, name) {
  return Array.isArray(schema?.required) && schema.required.includes(name);
}

function asMb(x) {
  return typeof x === "number" && x > 0 ? x : null;
}

/** `accept` as a list of MIME types or extensions (a string is split on commas). */
export function acceptList(schema) {
  const a = hints(schema).accept;
  const list = Array.isArray(a) ? a : typeof a === "string" ? a.split(",") : [];
  const out = list.filter((x) => typeof x === "string").map((x) => x.trim()).filter(Boolean);
  if (out.length) return out;
  const media = schema?.contentMediaType;
  return typeof media === "string" && media ? [media] : [];
}

/**
 * What a form needs to render one field.
 * @param {object} schema the field's schema
 * @param {string} name its property name ("" for the root or a list item)
 * @param {boolean} required
 */
export function describe(schema, name, required) {
  const s = schema && typeof schema === "object" ? schema : {};
  const x = hints(s);
  const widget = widgetFor(s);
  const items = s.items && typeof s.items === "object" && !Array.isArray(s.items) ? s.items : {};
  const fileSchema = widget === "attachments" ? items : s;
  return {
    widget,
    name,
    label: typeof s.title === "string" && s.title ? s.title : humanize(name),
    description: typeof s.description === "string" ? s.description : "",
    help: typeof x.help === "string" ? x.help : "",
    placeholder: typeof x.placeholder === "string" ? x.placeholder : "",
    accept: acceptList(s),
    maxSizeMb: asMb(x.max_size_mb),
    upload: x.upload === "drive" ? "drive" : "inline",
    required: !!required,
    type: mainType(s),
    // what one file may be sent as (for attachments: each item)
    acceptsString: acceptsString(fileSchema),
    acceptsObject: acceptsType(fileSchema, "object"),
    options: Array.isArray(s.enum) ? s.enum : null,
    min: typeof s.minimum === "number" ? s.minimum : typeof s.exclusiveMinimum === "number" ? s.exclusiveMinimum : null,
    max: typeof s.maximum === "number" ? s.maximum : typeof s.exclusiveMaximum === "number" ? s.exclusiveMaximum : null,
    step: typeof s.multipleOf === "number" ? s.multipleOf : mainType(s) === "integer" ? 1 : "any",
    schema: s,
  };
}

/** "max_size" -> "Max size". */
export function humanize(name) {
  if (!name) return "Value";
  const words = String(name).replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The properties of an object schema as [name, schema, required] in declared order. */
export function propertiesOf(schema) {
  const props = schema && typeof schema.properties === "object" ? schema.properties : {};
  return Object.entries(props).map(([k, v]) => [k, v || {}, isRequired(schema, k)]);
}

/**
 * The form's first value: every `default`, nested objects filled as far as they have
 * defaults; fields without one are left out (so `required` catches them).
 */
export function initialValue(schema) {
  if (!schema || typeof schema !== "object") return undefined;
  if (schema.default !== undefined) return structuredClone(schema.default);
  if (widgetFor(schema) === "object") {
    const out = {};
    for (const [k, sub] of propertiesOf(schema)) {
      const v = initialValue(sub);
      if (v !== undefined) out[k] = v;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return undefined;
}

/** The root of the form: the inputs object, never undefined. */
export function initialInputs(schema) {
  const v = initialValue(schema);
  return v && typeof v === "object" && !Array.isArray(v) ? v : {};
}

/**
 * A copy of `obj` with the value at `path` set; `undefined` removes the key (an empty
 * field is absent, not ""), and an object left empty by that is removed too.
 */
export function setIn(obj, path, value) {
  if (!path.length) return value;
  const [head, ...rest] = path;
  const base = Array.isArray(obj)
    ? [...obj]
    : obj && typeof obj === "object"
      ? { ...obj }
      : typeof head === "number"
        ? []
        : {};
  const next = setIn(base[head], rest, value);
  if (Array.isArray(base)) {
    base[head] = next;
    return base;
  }
  if (next === undefined) delete base[head];
  else base[head] = next;
  return Object.keys(base).length ? base : undefined;
}

export function getIn(obj, path) {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[k];
  }
  return cur;
}

/** A JSON pointer ("/photo/drive_path") for a path of keys: how errors are keyed. */
export function pointer(path) {
  return path.map((k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

/** A DOM id for a field, stable per path. */
export function fieldId(path) {
  return "pg-f" + path.map((k) => "-" + String(k).replace(/[^A-Za-z0-9_]/g, "_")).join("");
}

/** The number a number field's text stands for: undefined when empty, NaN when not one. */
export function parseNumber(text) {
  const t = String(text).trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : NaN;
}

/** Whether a file (its MIME type and name) is one `accept` allows; an empty list allows all. */
export function accepts(accept, type, name) {
  if (!accept.length) return true;
  const t = (type || "").toLowerCase();
  const n = (name || "").toLowerCase();
  return accept.some((a) => {
    const x = a.toLowerCase();
    if (x.startsWith(".")) return n.endsWith(x);
    if (x.endsWith("/*")) return t.startsWith(x.slice(0, -1));
    return t === x;
  });
}

/** The `accept` attribute of a file input. */
export function acceptAttr(accept) {
  return accept.length ? accept.join(",") : undefined;
}

/**
 * The largest file a field takes, in MB. Inline files travel base64 in the job's body
 * (4 MiB at most, stored with the job), so they stay small: 1 MB unless max_size_mb
 * says otherwise, never over 3; a drive upload takes up to the drive's 50 MB.
 */
export const INLINE_DEFAULT_MB = 1;
export const INLINE_MAX_MB = 3;
export const DRIVE_MAX_MB = 50;

export function fileLimitMb(field) {
  if (field.upload === "drive") return Math.min(field.maxSizeMb ?? DRIVE_MAX_MB, DRIVE_MAX_MB);
  return Math.min(field.maxSizeMb ?? INLINE_DEFAULT_MB, INLINE_MAX_MB);
}

/** Why a file cannot be used, or null: the size limit, then `accept`. */
export function refuseFile(field, file) {
  const limit = fileLimitMb(field);
  if (file.size > limit * 1024 * 1024) {
    return `${file.name} is ${mb(file.size)} MB; this field takes at most ${limit} MB.`;
  }
  if (!accepts(field.accept, file.type, file.name)) {
    return `${file.name} is not one of the accepted types (${field.accept.join(", ")}).`;
  }
  return null;
}

function mb(bytes) {
  return (bytes / 1024 / 1024).toFixed(bytes < 1024 * 1024 ? 2 : 1);
}
