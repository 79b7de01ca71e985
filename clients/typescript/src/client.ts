import { PurasError, PurasStreamError } from "./errors.js";
import { readSse, SseParser, type SseMessage } from "./sse.js";
import type {
  Deployment,
  DeploymentList,
  DriveUploaded,
  JobEvent,
  JobList,
  JobOut,
  JobStatus,
  StreamEvent,
  StreamFrame,
} from "./types.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface PurasClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:8000` (the `/v1` paths are added). */
  baseUrl: string;
  /** A project key, `puras_live_<prefix>.<secret>`. */
  apiKey: string;
  /** Another fetch (a test's, a proxy's); the global one by default. */
  fetch?: FetchLike;
}

export interface SubmitOptions {
  /** Answer once the job is terminal, or as it stands after `timeout` seconds. */
  wait?: boolean;
  /** Seconds to wait, 1–60 (the server's default is 30); only with `wait`. */
  timeout?: number;
  /** The same key with the same body returns the original job (J10). */
  idempotencyKey?: string;
  /** What the job may spend at most, in micros (Z1). */
  maxCostMicros?: number;
  signal?: AbortSignal;
}

export interface StreamOptions {
  /** Resume after this event (its `id`): nothing before or at it is sent again. */
  lastEventId?: number;
  /** Reconnects in a row without a new frame before the stream gives up (default 5). */
  maxRetries?: number;
  /** Milliseconds before the first reconnect, doubled each time up to 5 s (default 250). */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

export interface ListJobsOptions {
  status?: JobStatus;
  /** 1–200, 25 by default. */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
  signal?: AbortSignal;
}

export interface UploadOptions {
  /** Empty: `uploads/<uuid>.<ext>`; ending in `/`: that folder plus the file's name; else that path. */
  path?: string;
  /** The file's name when `file` is a Blob without one. */
  filename?: string;
  signal?: AbortSignal;
}

type Query = Record<string, string | number | boolean | undefined>;

export class PurasClient {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: FetchLike;

  constructor({ baseUrl, apiKey, fetch: f }: PurasClientOptions) {
    if (!baseUrl) throw new TypeError("PurasClient: baseUrl is required (e.g. http://127.0.0.1:8000)");
    if (!apiKey) throw new TypeError("PurasClient: apiKey is required (a project key, puras_live_...)");
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#apiKey = apiKey;
    // Called unbound: a browser's fetch refuses any `this` other than the window.
    const impl = f ?? globalThis.fetch;
    if (typeof impl !== "function") {
      throw new TypeError("PurasClient: no global fetch here (Node 20+ or a browser): pass `fetch`");
    }
    this.#fetch = (input, init) => impl(input, init);
  }

  // -- jobs -------------------------------------------------------------------------------

  /** `POST /v1/jobs` (J1): the job at once (`queued`), or with `wait` once it has ended. */
  async submit(skill: string, inputs: Record<string, unknown> = {}, opts: SubmitOptions = {}): Promise<JobOut> {
    if (opts.timeout !== undefined && !opts.wait) {
      throw new TypeError("submit: `timeout` only applies with `wait: true`");
    }
    const query: Query = opts.wait ? { wait: true, timeout: opts.timeout } : {};
    const res = await this.#request("POST", "/v1/jobs", {
      query,
      json: submitBody(skill, inputs, opts.maxCostMicros),
      headers: idempotencyHeader(opts.idempotencyKey),
      signal: opts.signal,
    });
    return (await res.json()) as JobOut;
  }

  /** `GET /v1/jobs/{id}` (J2). */
  async getJob(jobId: string, opts: { signal?: AbortSignal } = {}): Promise<JobOut> {
    return this.#json<JobOut>("GET", `/v1/jobs/${seg(jobId)}`, opts.signal);
  }

  /** `GET /v1/jobs` (J4): one page, newest first. */
  async listJobs(opts: ListJobsOptions = {}): Promise<JobList> {
    const res = await this.#request("GET", "/v1/jobs", {
      query: { status: opts.status, limit: opts.limit, cursor: opts.cursor },
      signal: opts.signal,
    });
    return (await res.json()) as JobList;
  }

  /** `POST /v1/jobs/{id}/cancel` (J6); a job that succeeded or failed is a 409 `job_finished`. */
  async cancel(jobId: string, opts: { signal?: AbortSignal } = {}): Promise<JobOut> {
    return this.#json<JobOut>("POST", `/v1/jobs/${seg(jobId)}/cancel`, opts.signal);
  }

  /** `GET /v1/jobs/{id}/events` (J5): every event so far, in order. */
  async events(jobId: string, opts: { signal?: AbortSignal } = {}): Promise<JobEvent[]> {
    const body = await this.#json<{ events: JobEvent[] }>("GET", `/v1/jobs/${seg(jobId)}/events`, opts.signal);
    return body.events;
  }

  /**
   * `GET /v1/jobs/{id}/stream` (J5): the job's frames until its `end` frame. A dropped
   * connection is resumed with `Last-Event-ID`, so no event is lost or repeated.
   */
  stream(jobId: string, opts: StreamOptions = {}): AsyncGenerator<StreamFrame, void, undefined> {
    return this.#follow(null, jobId, opts);
  }

  /**
   * `POST /v1/jobs?stream=true`: submit and follow the job in one call. The job's id comes
   * from the `Puras-Job-Id` header or the first frame (Z6); once known, a dropped
   * connection is resumed on `GET /v1/jobs/{id}/stream`.
   */
  submitStream(
    skill: string,
    inputs: Record<string, unknown> = {},
    opts: Omit<SubmitOptions, "wait" | "timeout"> & Omit<StreamOptions, "lastEventId"> = {},
  ): AsyncGenerator<StreamFrame, void, undefined> {
    const first = (): Promise<Response> =>
      this.#request("POST", "/v1/jobs", {
        query: { stream: true },
        json: submitBody(skill, inputs, opts.maxCostMicros),
        headers: { ...idempotencyHeader(opts.idempotencyKey), Accept: "text/event-stream" },
        signal: opts.signal,
      });
    return this.#follow(first, null, opts);
  }

  async *#follow(
    first: (() => Promise<Response>) | null,
    knownJobId: string | null,
    opts: StreamOptions,
  ): AsyncGenerator<StreamFrame, void, undefined> {
    let jobId = knownJobId;
    let last: number | null = opts.lastEventId ?? null;
    const maxRetries = opts.maxRetries ?? 5;
    let delay = opts.retryDelayMs ?? 250;
    let failures = 0;
    let open = first;
    for (;;) {
      let res: Response;
      try {
        res = open !== null ? await open() : await this.#openStream(jobId, last, opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        // A refused request (4xx, 5xx other than an unavailable gateway) will not get better.
        if (err instanceof PurasError && err.status !== 502 && err.status !== 503 && err.status !== 504) throw err;
        if (open !== null) throw err; // the submit itself failed: nothing was accepted to follow
        failures += 1;
        if (failures > maxRetries) {
          throw new PurasStreamError(`stream of job ${jobId} could not reconnect: ${describe(err)}`, jobId, last, err);
        }
        await pause(delay, opts.signal);
        delay = Math.min(delay * 2, 5000);
        continue;
      }
      open = null;
      jobId ??= res.headers.get("puras-job-id");
      const parser = new SseParser(last === null ? "" : String(last));
      let dropped: unknown = undefined;
      const messages = readSse(bodyOf(res), parser);
      try {
        for (;;) {
          let next: IteratorResult<SseMessage, void>;
          try {
            next = await messages.next();
          } catch (err) {
            // The connection broke (reset, proxy timeout): resume below.
            if (opts.signal?.aborted) throw err;
            dropped = err;
            break;
          }
          if (next.done === true) break;
          const frame = toFrame(next.value); // a frame that is not JSON is not a drop: it throws
          if (frame.kind === "end") {
            yield frame;
            return;
          }
          if (frame.kind === "event") {
            // The server resumes after Last-Event-ID; the guard keeps that true whatever
            // a proxy in between replays.
            if (last !== null && frame.event.id <= last) continue;
            last = frame.event.id;
            jobId ??= frame.event.job_id ?? null;
            failures = 0;
            delay = opts.retryDelayMs ?? 250;
          }
          yield frame;
        }
      } finally {
        await messages.return(undefined);
      }
      if (jobId === null) {
        throw new PurasStreamError(
          "the submit stream ended before its end frame, and the server sent no job id to resume it with",
          null,
          last,
          dropped,
        );
      }
      failures += 1;
      if (failures > maxRetries) {
        const why = dropped === undefined ? "it ended without its end frame" : describe(dropped);
        throw new PurasStreamError(`stream of job ${jobId} kept dropping: ${why}`, jobId, last, dropped);
      }
      await pause(delay, opts.signal);
      delay = Math.min(delay * 2, 5000);
    }
  }

  #openStream(jobId: string | null, last: number | null, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (last !== null) headers["Last-Event-ID"] = String(last);
    return this.#request("GET", `/v1/jobs/${seg(jobId ?? "")}/stream`, { headers, signal });
  }

  // -- deployments ------------------------------------------------------------------------

  /** `GET /v1/deployments` (P3): newest first. */
  async listDeployments(opts: { signal?: AbortSignal } = {}): Promise<Deployment[]> {
    const body = await this.#json<DeploymentList>("GET", "/v1/deployments", opts.signal);
    return body.deployments;
  }

  /** `POST /v1/deployments/{id}/activate` (P3): also how to roll back. */
  async activateDeployment(deploymentId: string, opts: { signal?: AbortSignal } = {}): Promise<Deployment> {
    return this.#json<Deployment>("POST", `/v1/deployments/${seg(deploymentId)}/activate`, opts.signal);
  }

  // -- drive ------------------------------------------------------------------------------

  /** `POST /v1/drive/upload` (D2): a Blob or File into the project's drive (50 MiB at most). */
  async upload(file: Blob, opts: UploadOptions = {}): Promise<DriveUploaded> {
    const form = new FormData();
    const own = typeof File !== "undefined" && file instanceof File ? file.name : "";
    const name = opts.filename ?? (own || "upload");
    form.append("file", file, name);
    if (opts.path !== undefined) form.append("path", opts.path);
    const res = await this.#request("POST", "/v1/drive/upload", { body: form, signal: opts.signal });
    return (await res.json()) as DriveUploaded;
  }

  // -- transport --------------------------------------------------------------------------

  async #json<T>(method: string, path: string, signal?: AbortSignal): Promise<T> {
    const res = await this.#request(method, path, { signal });
    return (await res.json()) as T;
  }

  async #request(
    method: string,
    path: string,
    opts: {
      query?: Query;
      json?: unknown;
      body?: BodyInit;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
    },
  ): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.#apiKey}`, ...opts.headers };
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = body;
    if (opts.signal !== undefined) init.signal = opts.signal;
    const res = await this.#fetch(this.baseUrl + path + queryString(opts.query), init);
    if (!res.ok) throw await PurasError.fromResponse(res);
    return res;
  }
}

function submitBody(skill: string, inputs: Record<string, unknown>, maxCostMicros?: number): Record<string, unknown> {
  const body: Record<string, unknown> = { skill, inputs };
  if (maxCostMicros !== undefined) body.max_cost_micros = maxCostMicros;
  return body;
}

function idempotencyHeader(key?: string): Record<string, string> {
  return key === undefined ? {} : { "Idempotency-Key": key };
}

function queryString(q?: Query): string {
  if (q === undefined) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

function seg(id: string): string {
  if (!id) throw new TypeError("a job or deployment id is required");
  return encodeURIComponent(id);
}

function bodyOf(res: Response): ReadableStream<Uint8Array> {
  if (res.body === null) throw new PurasStreamError("the stream's response has no body", null, null);
  return res.body;
}

/** A frame of either server shape: with `event: <type>` (Z6) or as a plain `message`. */
function toFrame(msg: SseMessage): StreamFrame {
  let data: unknown;
  try {
    data = JSON.parse(msg.data);
  } catch {
    const id = msg.lastEventId === "" ? null : Number(msg.lastEventId);
    throw new PurasStreamError(`a \`${msg.event}\` frame of the stream is not JSON: ${msg.data.slice(0, 200)}`, null, id);
  }
  if (msg.event === "end") return { kind: "end", job: data as JobOut };
  const ev = data as StreamEvent & { payload: { step?: number; text?: string } };
  if (msg.event === "model_delta" || ev.type === "model_delta") {
    return { kind: "delta", step: Number(ev.payload.step), text: String(ev.payload.text ?? "") };
  }
  // Older servers left `id` out of the data; the SSE `id:` is the same position.
  if (typeof ev.id !== "number") ev.id = Number(msg.lastEventId);
  return { kind: "event", event: ev };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
