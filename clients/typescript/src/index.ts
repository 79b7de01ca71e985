/** A typed client of the Puras HTTP API (docs/api.md) for browsers and Node 20+. */
export { PurasClient } from "./client.js";
export type {
  FetchLike,
  ListJobsOptions,
  PurasClientOptions,
  StreamOptions,
  SubmitOptions,
  UploadOptions,
} from "./client.js";
export { PurasError, PurasStreamError } from "./errors.js";
export { SseParser, readSse } from "./sse.js";
export type { SseMessage } from "./sse.js";
export { TERMINAL_STATUSES } from "./types.js";
export type {
  Deployment,
  DeploymentList,
  DeploymentStatus,
  DriveUploaded,
  ErrorBody,
  JobEvent,
  JobEventType,
  JobList,
  JobOut,
  JobStatus,
  SkillSummary,
  StreamEvent,
  StreamFrame,
} from "./types.js";
