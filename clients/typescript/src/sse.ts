/**
 * A server-sent events parser (the WHATWG "event stream interpretation"), fed text as it
 * arrives. The client reads streams through fetch rather than EventSource, which cannot
 * send an Authorization header.
 */

export interface SseMessage {
  /** The `event:` field, `"message"` when the frame has none. */
  event: string;
  data: string;
  /** The stream's last event id once this frame is read (`id:` of this or an earlier frame). */
  lastEventId: string;
  /** Whether this frame itself carried an `id:` field. */
  hasId: boolean;
}

export class SseParser {
  #buffer = "";
  #started = false;
  #skipLf = false;
  #event = "";
  #data: string[] = [];
  #hasId = false;
  lastEventId: string;

  constructor(lastEventId = "") {
    this.lastEventId = lastEventId;
  }

  /** The frames completed by `chunk` (a frame is complete at its blank line). */
  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#skipLf && text.startsWith("\n")) text = text.slice(1);
    this.#skipLf = false;
    this.#buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (m === null) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === "\r" && m.index === this.#buffer.length - 1) {
        this.#skipLf = true;
      }
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      const msg = this.#line(line);
      if (msg !== null) out.push(msg);
    }
    return out;
  }

  #line(line: string): SseMessage | null {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return null; // a comment (`: ping`)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) {
          this.lastEventId = value;
          this.#hasId = true;
        }
        break;
      default: // `retry` and unknown fields: the client decides its own reconnects
        break;
    }
    return null;
  }

  #dispatch(): SseMessage | null {
    const hasId = this.#hasId;
    const event = this.#event;
    const data = this.#data;
    this.#event = "";
    this.#data = [];
    this.#hasId = false;
    if (data.length === 0) return null;
    return { event: event || "message", data: data.join("\n"), lastEventId: this.lastEventId, hasId };
  }
}

/** The frames of a response body, as they arrive. */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  parser: SseParser,
): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    // A frame without its blank line at the end of the body is incomplete: not dispatched.
    parser.push(decoder.decode());
  } finally {
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
