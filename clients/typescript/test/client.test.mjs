// The client against a scripted fetch: both shapes of a submit stream (with and without
// Z6's `event: <type>`, `job_id` and `Puras-Job-Id`), and error bodies of either kind.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PurasClient, PurasError, PurasStreamError } from "../dist/index.js";

const JOB = { id: "j1", status: "succeeded", result: { echoed: "hi" } };

function sse(frames, { drop = false } = {}) {
  const bytes = new TextEncoder().encode(frames.join(""));
  let sent = false;
  // Erroring a stream drops what it still queues: the error comes on the read after.
  return new ReadableStream({
    pull(ctl) {
      if (!sent && bytes.length > 0) {
        sent = true;
        ctl.enqueue(bytes);
      } else if (drop) ctl.error(new TypeError("connection reset"));
      else ctl.close();
    },
  });
}

/** A fetch answering each call with the next of `answers` (a function of the request). */
function scripted(...answers) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, method: init?.method, headers: { ...(init?.headers ?? {}) } });
    const next = answers.shift();
    if (next === undefined) throw new Error(`unexpected call ${url}`);
    return next();
  };
  return { calls, client: new PurasClient({ baseUrl: "http://api.test/", apiKey: "k", fetch: f }) };
}

const stream = (frames, opts = {}, headers = {}) => () =>
  new Response(sse(frames, opts), { headers: { "content-type": "text/event-stream", ...headers } });

async function all(frames) {
  const out = [];
  for await (const f of frames) out.push(f);
  return out;
}

const data = (o) => `data: ${JSON.stringify(o)}\n\n`;

test("a submit stream of the older shape (no event names, no job id) reads to its end", async () => {
  const { client, calls } = scripted(
    stream([
      `id: 1\n${data({ id: 1, type: "queued", payload: {} })}`,
      `id: 2\n${data({ id: 2, type: "succeeded", payload: JOB })}`,
      `event: end\n${data(JOB)}`,
    ]),
  );
  const frames = await all(client.submitStream("echo", { text: "hi" }, { maxCostMicros: 5 }));
  assert.deepEqual(frames.map((f) => f.kind), ["event", "event", "end"]);
  assert.deepEqual(frames.at(-1).job, JOB);
  assert.equal(calls[0].url, "http://api.test/v1/jobs?stream=true");
  assert.equal(calls[0].headers.Authorization, "Bearer k");
});

test("a dropped submit stream without a job id to resume is a PurasStreamError", async () => {
  const { client } = scripted(stream([`id: 1\n${data({ id: 1, type: "queued", payload: {} })}`], { drop: true }));
  await assert.rejects(all(client.submitStream("echo", {})), (e) => e instanceof PurasStreamError && e.lastEventId === 1);
});

test("the job id of the first frame (Z6) resumes a dropped submit stream", async () => {
  const { client, calls } = scripted(
    stream([`event: queued\nid: 1\n${data({ id: 1, type: "queued", payload: {}, job_id: "j1" })}`], { drop: true }),
    stream([
      // A replayed event is skipped even if a server in between sends it again.
      `event: queued\nid: 1\n${data({ id: 1, type: "queued", payload: {}, job_id: "j1" })}`,
      `event: model_delta\nid: 1\n${data({ type: "model_delta", payload: { step: 1, text: "Hel" } })}`,
      `event: succeeded\nid: 2\n${data({ id: 2, type: "succeeded", payload: JOB, job_id: "j1" })}`,
      `event: end\n${data(JOB)}`,
    ]),
  );
  const frames = await all(client.submitStream("echo", {}, { retryDelayMs: 1 }));
  assert.deepEqual(frames.map((f) => (f.kind === "event" ? f.event.id : f.kind)), [1, "delta", 2, "end"]);
  assert.deepEqual(frames[1], { kind: "delta", step: 1, text: "Hel" });
  assert.equal(calls[1].url, "http://api.test/v1/jobs/j1/stream");
  assert.equal(calls[1].headers["Last-Event-ID"], "1");
});

test("the Puras-Job-Id header resumes a submit stream dropped before any frame", async () => {
  const { client, calls } = scripted(
    stream([], { drop: true }, { "Puras-Job-Id": "j9" }),
    stream([`event: end\n${data(JOB)}`]),
  );
  await all(client.submitStream("echo", {}, { retryDelayMs: 1 }));
  assert.equal(calls[1].url, "http://api.test/v1/jobs/j9/stream");
  assert.equal(calls[1].headers["Last-Event-ID"], undefined);
});

test("a stream that keeps dropping gives up after maxRetries", async () => {
  const drop = stream([], { drop: true });
  const { client, calls } = scripted(drop, drop, drop);
  await assert.rejects(all(client.stream("j1", { maxRetries: 2, retryDelayMs: 1 })), PurasStreamError);
  assert.equal(calls.length, 3);
});

test("errors carry status, code, message and context; other bodies keep their text", async () => {
  const { client } = scripted(
    () =>
      new Response(JSON.stringify({ error: { code: "job_finished", message: "job j1 has succeeded", job_status: "succeeded" } }), {
        status: 409,
      }),
    () => new Response("Invalid HTTP request received.", { status: 400 }),
    () => new Response(JSON.stringify({ detail: "Not Found" }), { status: 404 }),
  );
  await assert.rejects(client.cancel("j1"), (e) => {
    assert.ok(e instanceof PurasError);
    assert.deepEqual([e.status, e.code, e.message, e.details], [409, "job_finished", "job j1 has succeeded", { job_status: "succeeded" }]);
    return true;
  });
  await assert.rejects(client.getJob("j1"), { status: 400, code: "http_400", message: "Invalid HTTP request received." });
  await assert.rejects(client.getJob("j1"), { status: 404, code: "http_404", message: "Not Found" });
});

test("a frame that is not JSON stops the stream instead of reconnecting", async () => {
  const { client, calls } = scripted(stream(["id: 3\ndata: <html>\n\n"]));
  await assert.rejects(all(client.stream("j1", { retryDelayMs: 1 })), (e) => {
    assert.ok(e instanceof PurasStreamError);
    assert.match(e.message, /not JSON: <html>/);
    assert.equal(e.lastEventId, 3);
    return true;
  });
  assert.equal(calls.length, 1);
});

test("timeout without wait is refused before any request", async () => {
  const { client, calls } = scripted();
  await assert.rejects(client.submit("echo", {}, { timeout: 5 }), TypeError);
  assert.equal(calls.length, 0);
});
