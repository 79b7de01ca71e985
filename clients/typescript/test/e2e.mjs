// The client against a running stack: PURAS_API_BASE and PURAS_API_KEY of a project with
// tests/e2e/project deployed (skills echo and nap). Run by tests/e2e/test_typescript_client.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PurasClient, PurasError } from "../dist/index.js";

const baseUrl = process.env.PURAS_API_BASE;
const apiKey = process.env.PURAS_API_KEY;
if (!baseUrl || !apiKey) throw new Error("set PURAS_API_BASE and PURAS_API_KEY (source .puras/dev.env)");

const client = new PurasClient({ baseUrl, apiKey });

/** A fetch whose stream answers break off after the given numbers of frames, in turn. */
function droppingFetch(...cuts) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, headers: { ...(init?.headers ?? {}) } });
    const res = await fetch(url, init);
    const sse = (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
    if (!sse || cuts.length === 0) return res;
    return new Response(cutAfter(res.body, cuts.shift()), { status: res.status, headers: res.headers });
  };
  return { fetch: f, calls };
}

/** The body up to the end of its n-th frame, then a connection error. */
function cutAfter(body, n) {
  const reader = body.getReader();
  let frames = 0;
  let prev = -1;
  let cut = false;
  return new ReadableStream({
    async pull(ctl) {
      // Erroring a stream drops what it still queues: the error comes on the read after.
      if (cut) return ctl.error(new TypeError("connection reset"));
      const { done, value } = await reader.read();
      if (done) return ctl.close();
      for (let i = 0; i < value.length; i++) {
        if (value[i] === 10 && prev === 10 && ++frames === n) {
          cut = true;
          await reader.cancel();
          return ctl.enqueue(value.subarray(0, i + 1));
        }
        prev = value[i];
      }
      ctl.enqueue(value);
    },
  });
}

async function collect(frames) {
  const out = { events: [], end: null };
  for await (const f of frames) {
    if (f.kind === "event") out.events.push(f.event);
    else if (f.kind === "end") out.end = f.job;
  }
  return out;
}

const strip = (evs) => evs.map(({ id, type, payload }) => ({ id, type, payload }));

test("submit with wait returns the finished job; an Idempotency-Key returns it again", async () => {
  const key = `ts-${Date.now()}-${Math.random()}`;
  const job = await client.submit("echo", { text: "hi" }, { wait: true, timeout: 30, idempotencyKey: key, maxCostMicros: 1000 });
  assert.equal(job.status, "succeeded", job.error ?? "");
  assert.deepEqual(job.result, { echoed: "hi" });
  const again = await client.submit("echo", { text: "hi" }, { idempotencyKey: key, maxCostMicros: 1000 });
  assert.equal(again.id, job.id);
  assert.deepEqual(await client.getJob(job.id), job);
});

test("listJobs pages with next_cursor, newest first, every job once", async () => {
  const ids = [];
  for (const text of ["a", "b", "c"]) ids.push((await client.submit("echo", { text })).id);
  const seen = [];
  let cursor;
  let pages = 0;
  do {
    const page = await client.listJobs({ limit: 2, cursor });
    assert.ok(page.jobs.length <= 2);
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.next_cursor ?? undefined;
    pages += 1;
  } while (cursor !== undefined && pages < 50);
  assert.ok(pages >= 2, "three jobs at two a page make two pages at least");
  assert.equal(new Set(seen).size, seen.length, "no job on two pages");
  const mine = seen.filter((id) => ids.includes(id));
  assert.deepEqual(mine, [...ids].reverse(), "newest first");
});

test("stream follows a job to its end frame, every event once and in order", async () => {
  const job = await client.submit("nap", { seconds: 0.2 });
  const got = await collect(client.stream(job.id));
  assert.equal(got.end?.status, "succeeded");
  assert.equal(got.end?.id, job.id);
  assert.deepEqual(got.events.map((e) => e.id), got.events.map((_, i) => i + 1));
  assert.deepEqual(got.events.map((e) => e.type).at(0), "queued");
  assert.deepEqual(strip(got.events), strip(await client.events(job.id)));
});

test("stream from a Last-Event-ID mid-way sends exactly the events after it", async () => {
  const job = await client.submit("nap", { seconds: 0 }, { wait: true });
  const all = await client.events(job.id);
  assert.ok(all.length >= 3, JSON.stringify(all));
  const got = await collect(client.stream(job.id, { lastEventId: 2 }));
  assert.deepEqual(strip(got.events), strip(all.slice(2)));
  assert.equal(got.end?.status, "succeeded");
});

test("a dropped stream reconnects with Last-Event-ID: nothing lost or repeated", async () => {
  const dropping = droppingFetch(2, 1);
  const c = new PurasClient({ baseUrl, apiKey, fetch: dropping.fetch });
  const job = await c.submit("nap", { seconds: 1 });
  const got = await collect(c.stream(job.id, { retryDelayMs: 10 }));
  assert.equal(got.end?.status, "succeeded");
  assert.deepEqual(strip(got.events), strip(await client.events(job.id)));
  const resumed = dropping.calls.filter((x) => x.url.endsWith("/stream")).map((x) => x.headers["Last-Event-ID"]);
  assert.deepEqual(resumed, [undefined, "2", "3"]);
});

test("submitStream gives the job id and its events, and resumes a dropped submit", async () => {
  const plain = await collect(client.submitStream("echo", { text: "streamed" }));
  assert.equal(plain.end?.status, "succeeded");
  assert.deepEqual(plain.end?.result, { echoed: "streamed" });
  assert.equal(plain.events[0]?.type, "queued");
  assert.deepEqual(strip(plain.events), strip(await client.events(plain.end.id)));

  const dropping = droppingFetch(1);
  const c = new PurasClient({ baseUrl, apiKey, fetch: dropping.fetch });
  const got = await collect(c.submitStream("nap", { seconds: 0.5 }, { retryDelayMs: 10 }));
  assert.equal(got.end?.status, "succeeded");
  assert.deepEqual(strip(got.events), strip(await client.events(got.end.id)));
  const last = dropping.calls.at(-1);
  assert.ok(last.url.endsWith(`/v1/jobs/${got.end.id}/stream`), last.url);
  assert.equal(last.headers["Last-Event-ID"], "1");
});

test("refusals are PurasErrors with the API's status and code", async () => {
  await assert.rejects(client.submit("no-such-skill", {}), (e) => {
    assert.ok(e instanceof PurasError);
    assert.equal(e.status, 404);
    assert.equal(e.code, "skill_not_found");
    assert.match(e.message, /no-such-skill/);
    assert.ok(Array.isArray(e.details.available_skills));
    return true;
  });
  await assert.rejects(client.submit("echo", { text: 5 }), { name: "PurasError", status: 422, code: "invalid_inputs" });
  const done = await client.submit("echo", { text: "x" }, { wait: true });
  await assert.rejects(client.cancel(done.id), { status: 409, code: "job_finished" });
  await assert.rejects(client.getJob("0192aaaa-0000-7000-8000-000000000000"), { status: 404, code: "job_not_found" });
  const stranger = new PurasClient({ baseUrl, apiKey: "puras_live_nope.nope" });
  await assert.rejects(stranger.listJobs(), { status: 401, code: "unauthorized" });
});

test("upload puts a Blob or a File into the drive", async () => {
  const text = "hello from the typescript client\n";
  const up = await client.upload(new Blob([text], { type: "text/plain" }), { path: "ts/hello.txt" });
  assert.equal(up.drive_path, "ts/hello.txt");
  assert.equal(up.bytes, new TextEncoder().encode(text).length);
  const served = await fetch(new URL(up.signed_url, baseUrl));
  assert.equal(served.status, 200);
  assert.equal(await served.text(), text);
  const file = await client.upload(new File(["# notes\n"], "notes.md", { type: "text/markdown" }), { path: "ts/" });
  assert.equal(file.drive_path, "ts/notes.md");
});

test("listDeployments shows the active deployment; activating it again returns it", async () => {
  const deps = await client.listDeployments();
  const active = deps.filter((d) => d.active);
  assert.equal(active.length, 1, JSON.stringify(deps));
  assert.ok(active[0].skills.some((s) => s.name === "echo"));
  const again = await client.activateDeployment(active[0].id);
  assert.equal(again.id, active[0].id);
  assert.equal(again.active, true);
});
