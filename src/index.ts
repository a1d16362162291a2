// pgq: a durable job queue that lives entirely in PostgreSQL.
export { connect, type Queue } from "./client.js";
export type { PgqWorker } from "./worker/worker.js";
export {
  PgqError,
  ValidationError,
  LeaseLostError,
  JobTimeoutError,
  DatabaseTimeoutError,
  type PgqErrorCode,
} from "./errors.js";
export { retryDelayMs, type Backoff } from "./retry-policy.js";
export { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "./job-defaults.js";
export type * from "./types.js";
export type { DeadJob, DeadJobFilter, ListDeadJobsOptions, PurgeDeadJobsOptions } from "./admin/dead-jobs.js";
export type { Inspection, InspectOptions, InspectedState, QueueInspection } from "./admin/inspect.js";
