// The "Calling it from an app" snippet of the docs' example project (examples/image-tools),
// run under Node 20 (global fetch, FormData, File) as a browser would run it.
//
// Between the markers the snippet is as the docs print it, except that API_BASE and KEY
// come from the environment (PURAS_API_BASE, PURAS_API_KEY). Below them, a wrapper makes
// a File of the image named on the command line, calls analyze(file) and prints what it
// returns as one line of JSON.
//
//   PURAS_API_BASE=http://127.0.0.1:8080 PURAS_API_KEY=puras_live_... \
//     node app_snippet.mjs photo.png

import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";

// ---- the docs' snippet ---------------------------------------------------------------------
const API_BASE = process.env.PURAS_API_BASE;
const KEY = process.env.PURAS_API_KEY;

async function analyze(file /* a browser File */) {
  // 1) Upload once.
  const fd = new FormData();
  fd.append("file", file);
  const up = await fetch(`${API_BASE}/v1/drive/upload`, {
    method: "POST",
    headers: { Authorization: `Bearer ${KEY}` },
    body: fd,
  }).then(r => r.json());
  // up: { drive_path, full_path, signed_url, bytes, content_type }

  // 2) Fast deterministic skill — wait inline.
  const info = await fetch(`${API_BASE}/v1/jobs?wait=true&timeout=20`, {
    method: "POST",
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      skill: "image-info",
      inputs: { image: { drive_path: up.drive_path } },
    }),
  }).then(r => r.json());
  // info.result → { width, height, format, thumb: { drive_path } }

  // 3) Kick off the agentic caption skill — attach the photo natively.
  const cap = await fetch(`${API_BASE}/v1/jobs`, {
    method: "POST",
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      skill: "caption",
      inputs: {
        prompt: "Tone: playful. Write the caption.",
        attachments: [{ drive_path: up.drive_path }],
      },
    }),
  }).then(r => r.json());
  // Poll GET /v1/jobs/{cap.id} or stream GET /v1/jobs/{cap.id}/stream

  return { info: info.result, captionJobId: cap.id };
}
// ---- end of the docs' snippet --------------------------------------------------------------

if (!API_BASE || !KEY) {
  console.error("set PURAS_API_BASE and PURAS_API_KEY");
  process.exit(2);
}
const [imagePath] = process.argv.slice(2);
if (!imagePath) {
  console.error("usage: node app_snippet.mjs IMAGE");
  process.exit(2);
}
// A browser's File carries the type the OS gives the file; here its extension says it.
const TYPES = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".gif": "image/gif",
};
const type = TYPES[extname(imagePath).toLowerCase()] ?? "application/octet-stream";
const file = new File([await readFile(imagePath)], basename(imagePath), { type });
console.log(JSON.stringify(await analyze(file)));
