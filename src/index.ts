// pgq: a durable job queue that lives entirely in PostgreSQL.
export { connect, type Queue } from "./client.js";
export type { PgqWorker } from "./worker/worker.js";
export {
  PgqError,
  ValidationError,
  LeaseLostError,
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  WaitTimeoutError,
  JobTimeoutError,
  DatabaseTimeoutError,
  TooManyConnectionsError,
  WorkerStoppedError,
  WorkerLostError,
  ClientClosedError,
  type PgqErrorCode,
} from "./errors.js";
export { ConnectionLostError } from "./worker/job-connection.js";
export { retryDelayMs, type Backoff } from "./retry-policy.js";
export { transactionAdapter } from "./db/executor.js";
export { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "./job-defaults.js";
export type * from "./types.js";
export type { DeadJob, DeadJobFilter, ListDeadJobsOptions, PurgeDeadJobsOptions } from "./admin/dead-jobs.js";
export type { Inspection, InspectOptions, InspectedState, QueueInspection, RunningJob, RunningJobs } from "./admin/inspect.js";
export type { WorkerInfo } from "./admin/workers.js";
export { metricsHandler, metricsRegistry } from "./telemetry/metrics.js";
export { dashboard, type Dashboard, type DashboardAuth, type DashboardOptions } from "./dashboard/index.js";
export type { Health, JobsTableHealth, XminHolder } from "./admin/health.js";
export type { AnyJobState, FinalState, JobState } from "./job-state.js";
