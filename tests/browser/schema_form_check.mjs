// Checks of the playground's pure form logic (lib/schema_form.js, lib/validate.js),
// run by test_dash_playground.py through `node --input-type=module` from this folder.
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";

const LIB = pathToFileURL(process.cwd() + "/../../services/gateway/src/puras_gateway/dashboard/static/lib/");
const sf = await import(new URL("schema_form.js", LIB));
const { validateInputs, problemsToErrors } = await import(new URL("validate.js", LIB));

// The widget: x-puras.widget, else contentMediaType, else the type; unknown widgets ignored.
const w = sf.widgetFor;
assert.equal(w({ type: "string", "x-puras": { widget: "long_text" } }), "long_text");
assert.equal(w({ type: "string", "x-puras": { widget: "sparkles" } }), "text");
assert.equal(w({ type: "string", contentMediaType: "image/png" }), "image");
assert.equal(w({ oneOf: [{ type: "string" }, { type: "object" }], contentMediaType: "video/mp4" }), "video");
assert.equal(w({ type: "string", contentMediaType: "audio/mpeg" }), "audio");
assert.equal(w({ type: "string", "x-puras": { widget: "drive_file" } }), "drive_file");
assert.equal(w({ type: "string", enum: ["a", "b"] }), "select");
assert.equal(w({ type: "integer" }), "number");
assert.equal(w({ type: ["number", "null"] }), "number");
assert.equal(w({ type: "boolean" }), "checkbox");
assert.equal(w({ type: "object", properties: { a: { type: "string" } } }), "object");
assert.equal(w({ type: "object" }), "json");
assert.equal(w({ type: "array", items: { type: "string" } }), "list");
assert.equal(w({ type: "array", items: { type: "object" } }), "json");
assert.equal(w({ oneOf: [{ type: "string" }, { type: "integer" }] }), "json");
assert.equal(w({}), "json");

// What a field shows.
const d = sf.describe(
  { type: "integer", title: "Copies", minimum: 1, maximum: 5, "x-puras": { help: "h", placeholder: "p", max_size_mb: 2, upload: "drive", unknown: 1 } },
  "copies",
  true,
);
assert.deepEqual(
  [d.label, d.help, d.placeholder, d.min, d.max, d.step, d.required, d.maxSizeMb, d.upload],
  ["Copies", "h", "p", 1, 5, 1, true, 2, "drive"],
);
assert.equal(sf.describe({ type: "string" }, "max_size", false).label, "Max size");
assert.deepEqual(sf.describe({ contentMediaType: "image/png" }, "x", false).accept, ["image/png"]);
assert.deepEqual(sf.describe({ "x-puras": { accept: "image/png, .jpg" } }, "x", false).accept, ["image/png", ".jpg"]);
assert.equal(sf.describe({ oneOf: [{ type: "string" }, { type: "object" }] }, "x", false).acceptsObject, true);
assert.equal(sf.describe({ type: "string" }, "x", false).acceptsObject, false);
const att = sf.describe({ type: "array", items: { type: "object" }, "x-puras": { widget: "attachments" } }, "x", false);
assert.deepEqual([att.acceptsObject, att.acceptsString], [true, false]);

// Defaults fill the first value; fields without one stay out.
assert.deepEqual(
  sf.initialInputs({
    type: "object",
    properties: { a: { type: "integer", default: 2 }, b: { type: "string" }, o: { type: "object", properties: { c: { default: true } } } },
  }),
  { a: 2, o: { c: true } },
);

// Setting values: undefined removes the key, and an object left empty goes too.
assert.deepEqual(sf.setIn({ a: 1 }, ["b", "c"], 2), { a: 1, b: { c: 2 } });
assert.deepEqual(sf.setIn({ a: 1, b: { c: 2 } }, ["b", "c"], undefined), { a: 1 });
assert.equal(sf.setIn({ a: 1 }, ["a"], undefined), undefined);
assert.equal(JSON.stringify(sf.setIn({}, ["l", 1], "x")), '{"l":[null,"x"]}');
assert.equal(sf.pointer(["a/b", "c~", 0]), "/a~1b/c~0/0");
assert.equal(sf.parseNumber(" 3.5 "), 3.5);
assert.equal(sf.parseNumber(""), undefined);
assert.ok(Number.isNaN(sf.parseNumber("abc")));

// Files: size first, then accept; inline files stay small.
const img = sf.describe({ "x-puras": { widget: "image", accept: ["image/*"], max_size_mb: 1 } }, "p", false);
assert.equal(sf.refuseFile(img, { name: "a.png", type: "image/png", size: 1000 }), null);
assert.match(sf.refuseFile(img, { name: "a.png", type: "image/png", size: 2 * 1024 * 1024 }), /at most 1 MB/);
assert.match(sf.refuseFile(img, { name: "a.txt", type: "text/plain", size: 10 }), /not one of the accepted types/);
assert.equal(sf.fileLimitMb(sf.describe({ "x-puras": { widget: "file" } }, "f", false)), 1);
assert.equal(sf.fileLimitMb(sf.describe({ "x-puras": { widget: "file", max_size_mb: 20 } }, "f", false)), 3);
assert.equal(sf.fileLimitMb(sf.describe({ "x-puras": { widget: "file", upload: "drive" } }, "f", false)), 50);
assert.ok(sf.accepts([".PNG"], "", "x.png"));

// Validation (draft 2020-12), errors keyed by the field they belong to.
const schema = {
  type: "object",
  properties: {
    photo: { oneOf: [{ type: "string" }, { type: "object" }], "x-puras": { widget: "image" } },
    caption: { type: "string", minLength: 1 },
    copies: { type: "integer", minimum: 1, maximum: 5 },
    frame: { type: "object", properties: { width: { type: "integer", exclusiveMinimum: 0 } } },
    tags: { type: "array", items: { type: "string" } },
  },
  required: ["photo", "caption"],
};
assert.deepEqual(validateInputs(schema, { photo: { drive_path: "uploads/a.png" }, caption: "x" }), { valid: true, errors: [] });
const bad = validateInputs(schema, { copies: 9, frame: { width: 0 }, tags: ["a", 3] });
assert.equal(bad.valid, false);
assert.deepEqual(bad.errors, [
  { path: "/photo", message: "This field is required." },
  { path: "/caption", message: "This field is required." },
  { path: "/copies", message: "Must be at most 5." },
  { path: "/frame/width", message: "Must be more than 0." },
  { path: "/tags/1", message: "Must be string, not number." },
]);
assert.deepEqual(validateInputs(schema, { photo: 4, caption: "x" }).errors, [
  { path: "/photo", message: "This value does not have any of the accepted shapes." },
]);
// x-puras and contentMediaType never make a value invalid
assert.equal(validateInputs({ type: "string", contentMediaType: "image/png", "x-puras": { widget: 3 } }, "x").valid, true);

// The gateway's 422 problems land on the same fields.
assert.deepEqual(
  problemsToErrors([
    { path: "inputs", message: "'email' is a required property" },
    { path: "inputs.count", message: "0 is less than the minimum of 1" },
    { path: "inputs.tags[2]", message: "m" },
    { path: 'inputs["a b"].c', message: "n" },
  ]),
  [
    { path: "/email", message: "This field is required." },
    { path: "/count", message: "0 is less than the minimum of 1" },
    { path: "/tags/2", message: "m" },
    { path: "/a b/c", message: "n" },
  ],
);

// What the result view shows inline: by schema, media type or extension.
const { fileOf } = await import(new URL("result_view.js", LIB));
assert.deepEqual(fileOf({ drive_path: "out/a.png" }, {}), { drive: "out/a.png", label: "out/a.png", kind: "image" });
assert.equal(fileOf({ drive_path: "out/a" }, { "x-puras": { widget: "video" } }).kind, "video");
assert.equal(fileOf({ drive_path: "out/a", media_type: "audio/mpeg" }, {}).kind, "audio");
assert.equal(fileOf("https://cdn.example.com/v.mp4?x=1", {}).kind, "video");
assert.equal(fileOf("renders/x", { contentMediaType: "image/webp" }).drive, "renders/x");
assert.equal(fileOf("see cat.png", {}), null);
assert.equal(fileOf("javascript:alert(1).png", {}), null);
assert.equal(fileOf({ url: "ftp://x/a.png" }, {}), null);
assert.equal(fileOf({ base64: "AAAA", media_type: "image/png" }, {}).kind, "image");
assert.equal(fileOf({ drive_path: "notes.txt" }, {}), null);
assert.equal(fileOf(42, { contentMediaType: "image/png" }), null);

console.log("ok");
