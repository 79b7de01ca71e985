/**
 * The API's shapes (SPEC J2, J5, P1/P3, D2; docs/api.md), written by hand so they read
 * well in an editor. test/openapi.check.ts holds them against the gateway's own
 * /openapi.json, so a field the server renames or drops fails the client's build check.
 */

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

/** A job as the API returns it (J2); `held_reason` says why a queued job waits (Z8). */
export interface JobOut {
  id: string;
  project_id: string;
  skill: string;
  status: JobStatus;
  inputs: Record<string, unknown>;
  result: Record<string, unknown> | null;
  error: string | null;
  cost_micros: number;
  deployment_id: string | null;
  attempts: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  held_reason?: string | null;
}

/** `GET /v1/jobs`: newest first; pass `next_cursor` back as `cursor` for the next page. */
export interface JobList {
  jobs: JobOut[];
  next_cursor: string | null;
}

/** The event types of J5, A10 and Z1; any other string may come from a newer server. */
export type JobEventType =
  | "queued"
  | "released"
  | "started"
  | "log"
  | "agent_start"
  | "model_response"
  | "tool_call"
  | "tool_result"
  | "cost"
  | "succeeded"
  | "failed"
  | "cancelled"
  | (string & {});

/** One event of a job's log (J5); `id` is its position in the job, from 1. */
export interface JobEvent {
  id: number;
  type: JobEventType;
  payload: Record<string, unknown>;
  at: string;
}

/** A data frame of a stream: the event, with the job's id where the server sends it (Z6). */
export interface StreamEvent extends JobEvent {
  job_id?: string;
}

/** What `stream` and `submitStream` yield, in order. */
export type StreamFrame =
  | { kind: "event"; event: StreamEvent }
  /** Live model text (Z5): never stored, so a resumed stream does not replay it. */
  | { kind: "delta"; step: number; text: string }
  /** The last frame: the job as it ended. */
  | { kind: "end"; job: JobOut };

export interface SkillSummary {
  name: string;
  kind: "deterministic" | "agentic";
  description: string;
}

export type DeploymentStatus = "building" | "ready" | "failed";

/** A deployment (P1, P3); `status` and `error` come with push-time builds (Z7). */
export interface Deployment {
  id: string;
  notes: string;
  created_at: string;
  active: boolean;
  activated_at?: string | null;
  bundle_size: number;
  skills: SkillSummary[];
  status?: DeploymentStatus;
  error?: string | null;
}

export interface DeploymentList {
  deployments: Deployment[];
}

/** `POST /v1/drive/upload` (D2). */
export interface DriveUploaded {
  drive_path: string;
  full_path: string;
  signed_url: string;
  bytes: number;
  content_type: string;
}

/** The error body of every non-2xx answer; some codes add context (`problems`, `job_id`). */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    [context: string]: unknown;
  };
}
