// Checks a form's inputs against the skill's input_schema in the browser (draft 2020-12,
// as the gateway does), so a mistake shows next to its field before anything is sent.
// Errors are keyed by JSON pointer into the inputs ("/photo", "/frame/width").
import { Validator } from "../vendor/json-schema/index.js";

// Errors that only say "something below me failed": the failure below says what.
const WRAPPERS = new Set([
  "properties", "patternProperties", "additionalProperties", "unevaluatedProperties",
  "items", "prefixItems", "additionalItems", "unevaluatedItems", "$ref", "allOf",
  "contains", "dependentSchemas", "if",
]);

/** "#/a/b%20c" -> "/a/b c" (the validator percent-encodes its pointers). */
function toPointer(instanceLocation) {
  const raw = String(instanceLocation || "#").replace(/^#/, "");
  try {
    return decodeURI(raw).replace(/%23/g, "#");
  } catch (_) {
    return raw;
  }
}

function say(err) {
  const m = /^Instance does not have required property "(.*)"\.$/.exec(err.error);
  if (err.keyword === "required" && m) return { at: "/" + m[1].replace(/~/g, "~0").replace(/\//g, "~1"), message: "This field is required." };
  const text = err.error.replace(/^Instance /, "The value ");
  return { at: null, message: text };
}

/**
 * @param {object} schema the input_schema
 * @param {any} value the assembled inputs
 * @returns {{valid: boolean, errors: {path: string, message: string}[]}} path "" is the whole
 *   inputs object
 */
export function validateInputs(schema, value) {
  if (!schema || typeof schema !== "object") return { valid: true, errors: [] };
  let result;
  try {
    result = new Validator(schema, "2020-12", false).validate(value);
  } catch (e) {
    // A schema the validator cannot compile: leave the check to the gateway.
    return { valid: true, errors: [] };
  }
  if (result.valid) return { valid: true, errors: [] };
  const seen = new Set();
  const errors = [];
  const all = result.errors.map((e) => ({ ...e, pointer: toPointer(e.instanceLocation) }));
  for (const e of all) {
    if (WRAPPERS.has(e.keyword)) continue;
    // oneOf/anyOf say "no alternative fits" at the field; their alternatives' own errors
    // (about the same place) would only repeat it with less sense.
    const under = all.some((o) => o !== e && (o.keyword === "oneOf" || o.keyword === "anyOf") && o.pointer === e.pointer && o.keywordLocation.length < e.keywordLocation.length && e.keywordLocation.startsWith(o.keywordLocation));
    if (under) continue;
    const { at, message } = say(e);
    const path = at !== null ? e.pointer + at : e.pointer;
    const key = path + "\u0000" + message;
    if (seen.has(key)) continue;
    seen.add(key);
    errors.push({ path, message: friendly(e, message) });
  }
  return { valid: errors.length === 0, errors };
}

function friendly(e, message) {
  const raw = e.error.replace(/\s+/g, " ");
  let m;
  switch (e.keyword) {
    case "oneOf":
    case "anyOf":
      return "This value does not have any of the accepted shapes.";
    case "type":
      m = /type "(\w+)" is invalid\. Expected "(.+)"\./.exec(raw);
      return m ? `Must be ${m[2].replace(/", "/g, " or ")}, not ${m[1]}.` : message;
    case "minimum":
    case "exclusiveMinimum":
      m = /less than (or equal to )?(\S+)\.$/.exec(raw);
      return m ? `Must be ${m[1] || e.keyword !== "minimum" ? "more than" : "at least"} ${m[2]}.` : message;
    case "maximum":
    case "exclusiveMaximum":
      m = /greater than (or equal to )?(\S+)\.$/.exec(raw);
      return m ? `Must be ${m[1] || e.keyword !== "maximum" ? "less than" : "at most"} ${m[2]}.` : message;
    case "enum":
      return "Must be one of the listed choices.";
    default:
      return message;
  }
}

/** "inputs.frame.width", "inputs.tags[2]", 'inputs["a b"]' -> their keys. */
export function parseApiPath(path) {
  const rest = String(path || "").replace(/^inputs/, "");
  const keys = [];
  const re = /\.([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g;
  let m;
  while ((m = re.exec(rest))) {
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else {
      try {
        keys.push(JSON.parse(m[3]));
      } catch (_) {
        keys.push(m[3]);
      }
    }
  }
  return keys;
}

/**
 * The gateway's 422 problems ({path: "inputs.frame.width", message}) keyed as pointers,
 * so they show next to their fields too.
 */
export function problemsToErrors(problems) {
  if (!Array.isArray(problems)) return [];
  const enc = (k) => "/" + String(k).replace(/~/g, "~0").replace(/\//g, "~1");
  return problems.map((p) => {
    const keys = parseApiPath(p.path);
    const message = String(p.message || "");
    // A missing property is reported at its parent: show it at the field instead.
    const missing = /^'((?:[^'\\]|\\.)*)' is a required property$/.exec(message);
    if (missing) return { path: [...keys, missing[1]].map(enc).join(""), message: "This field is required." };
    return { path: keys.map(enc).join(""), message };
  });
}
