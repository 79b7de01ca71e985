// The SSE parser on its own: frames split anywhere, every line ending, comments, ids.
import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser } from "../dist/index.js";

const STREAM =
  ": ping\n\nevent: queued\nid: 1\ndata: {\"id\": 1}\n\n" +
  "id: 2\r\ndata: {\"id\":\r\ndata:  2}\r\n\r\n" +
  "event: end\rdata: {}\r\r";

function parseIn(chunks) {
  const p = new SseParser();
  return chunks.flatMap((c) => p.push(c));
}

test("frames come out the same however the text is split", () => {
  const whole = parseIn([STREAM]);
  assert.deepEqual(
    whole.map((m) => [m.event, m.data, m.lastEventId, m.hasId]),
    [
      ["queued", '{"id": 1}', "1", true],
      ["message", '{"id":\n 2}', "2", true],
      ["end", "{}", "2", false],
    ],
  );
  for (let i = 1; i < STREAM.length; i++) {
    assert.deepEqual(parseIn([STREAM.slice(0, i), STREAM.slice(i)]), whole, `split at ${i}`);
  }
  assert.deepEqual(parseIn([...STREAM]), whole, "one character at a time");
});

test("a frame without its blank line is not dispatched, and a BOM is skipped", () => {
  assert.deepEqual(parseIn(["\ufeffdata: a\n\ndata: b\n"]).map((m) => m.data), ["a"]);
});

test("the last event id starts from the resumed one and survives frames without id", () => {
  const p = new SseParser("7");
  const [m] = p.push("data: x\n\n");
  assert.equal(m.lastEventId, "7");
  assert.equal(m.hasId, false);
});
