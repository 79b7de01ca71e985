// The dashboard's client of the public /v1 API: nothing here knows a private endpoint.
// Every failure becomes an ApiError carrying the API's own message, which pages show as
// they got it.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the gateway was not reached)
   * @param {string} code the API's error code
   * @param {string} message the API's message, shown to the user verbatim
   * @param {any} [body] the whole error body (a 422 carries `problems`)
   */
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

async function errorFrom(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch (_) {
    /* not JSON: fall through to the status line */
  }
  const err = body && (body.error || body.detail);
  if (err && typeof err === "object" && err.message) {
    return new ApiError(resp.status, err.code || "error", err.message, body);
  }
  if (typeof err === "string") return new ApiError(resp.status, "error", err, body);
  return new ApiError(resp.status, "http_" + resp.status, `${resp.status} ${resp.statusText}`, body);
}

function unreachable(e) {
  if (e && e.name === "AbortError") return e;
  return new ApiError(0, "unreachable", "the gateway did not answer; is the stack running?");
}

function withQuery(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes("?") ? "&" : "?"}${s}` : path;
}

/**
 * A client bound to one credential (a project API key or the admin token).
 * @param {string} token
 */
export function createClient(token) {
  const auth = { Authorization: `Bearer ${token}` };

  /**
   * @param {string} method
   * @param {string} path a /v1 path
   * @param {{query?: object, json?: any, body?: BodyInit, headers?: object, signal?: AbortSignal, raw?: boolean}} [opts]
   */
  async function request(method, path, opts = {}) {
    const headers = { ...auth, ...(opts.headers || {}) };
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    let resp;
    try {
      resp = await fetch(withQuery(path, opts.query), {
        method,
        headers,
        body,
        signal: opts.signal,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw unreachable(e);
    }
    if (!resp.ok) throw await errorFrom(resp);
    if (opts.raw) return resp;
    if (resp.status === 204) return null;
    const type = resp.headers.get("content-type") || "";
    return type.includes("json") ? resp.json() : resp.text();
  }

  /**
   * A multipart upload with progress (fetch cannot report upload progress; XHR can).
   * @param {string} path
   * @param {FormData} form
   * @param {{onProgress?: (sent: number, total: number) => void, signal?: AbortSignal, query?: object}} [opts]
   */
  function upload(path, form, opts = {}) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", withQuery(path, opts.query));
      xhr.setRequestHeader("Authorization", auth.Authorization);
      xhr.responseType = "text";
      xhr.upload.onprogress = (ev) => {
        if (opts.onProgress && ev.lengthComputable) opts.onProgress(ev.loaded, ev.total);
      };
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (_) {
          /* keep null */
        }
        if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
        const err = body && body.error;
        reject(
          err && err.message
            ? new ApiError(xhr.status, err.code || "error", err.message, body)
            : new ApiError(xhr.status, "http_" + xhr.status, `${xhr.status} ${xhr.statusText}`, body),
        );
      };
      xhr.onerror = () => reject(unreachable(null));
      xhr.onabort = () => reject(new DOMException("upload cancelled", "AbortError"));
      if (opts.signal) opts.signal.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(form);
    });
  }

  /**
   * Reads a server-sent event stream (EventSource cannot send an Authorization header).
   * Calls onEvent({event, data, id}) per frame, `data` parsed as JSON when it is JSON;
   * resolves when the server ends the stream, rejects with an ApiError if it refuses.
   * @param {string} path
   * @param {{method?: string, json?: any, query?: object, signal?: AbortSignal, lastEventId?: string, onOpen?: (resp: Response) => void, onEvent: (f: {event: string, data: any, id: string | null}) => void}} opts
   */
  async function stream(path, opts) {
    const headers = { Accept: "text/event-stream" };
    if (opts.lastEventId) headers["Last-Event-ID"] = opts.lastEventId;
    const resp = await request(opts.method || "GET", path, {
      query: opts.query,
      json: opts.json,
      headers,
      signal: opts.signal,
      raw: true,
    });
    if (opts.onOpen) opts.onOpen(resp);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let frame = { event: "message", data: [], id: null };
    const flush = () => {
      if (frame.data.length) {
        const text = frame.data.join("\n");
        let data = text;
        try {
          data = JSON.parse(text);
        } catch (_) {
          /* plain text frame */
        }
        opts.onEvent({ event: frame.event, data, id: frame.id });
      }
      frame = { event: "message", data: [], id: null };
    };
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw unreachable(e);
      }
      if (chunk.done) break;
      buf += chunk.value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") flush();
        else if (line.startsWith(":")) continue;
        else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") frame.event = value;
          else if (field === "data") frame.data.push(value);
          else if (field === "id") frame.id = value;
        }
      }
    }
    flush();
  }

  return {
    request,
    upload,
    stream,
    get: (path, opts) => request("GET", path, opts),
    post: (path, json, opts = {}) => request("POST", path, { ...opts, json }),
    put: (path, json, opts = {}) => request("PUT", path, { ...opts, json }),
    del: (path, opts) => request("DELETE", path, opts),
  };
}
