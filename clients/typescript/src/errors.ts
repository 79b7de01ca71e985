import type { ErrorBody } from "./types.js";

/**
 * A non-2xx answer of the API: `status` is the HTTP status, `code` the API's stable code
 * (`skill_not_found`, `invalid_inputs`, ...), `message` what to fix, and `details` any
 * context the error carries (`problems`, `available_skills`, `job_id`, ...).
 */
export class PurasError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "PurasError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The error of a response, from `{"error": {"code", "message"}}` when it has one. */
  static async fromResponse(res: Response): Promise<PurasError> {
    const text = await res.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (isErrorBody(body)) {
      const { code, message, ...details } = body.error;
      return new PurasError(res.status, code, message, details);
    }
    // Answers not made by the API itself (a proxy, the HTTP parser) keep their text.
    const detail = isRecord(body) && typeof body.detail === "string" ? body.detail : text.trim();
    return new PurasError(
      res.status,
      `http_${res.status}`,
      detail || `${res.status} ${res.statusText}`.trim(),
    );
  }
}

/** A stream that cannot go on: it ended without its `end` frame and cannot be resumed. */
export class PurasStreamError extends Error {
  readonly jobId: string | null;
  readonly lastEventId: number | null;

  constructor(message: string, jobId: string | null, lastEventId: number | null, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "PurasStreamError";
    this.jobId = jobId;
    this.lastEventId = lastEventId;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isErrorBody(v: unknown): v is ErrorBody {
  return (
    isRecord(v) &&
    isRecord(v.error) &&
    typeof v.error.code === "string" &&
    typeof v.error.message === "string"
  );
}
