// The events a worker emits, for the CLI's status line, tests and metrics (telemetry/worker-metrics.ts).
import type { Job } from "../types.js";
import type { FailureResult } from "./completer.js";

export type FailedOutcome = Exclude<FailureResult, "lease-lost">;

export interface WorkerEvents {
  /** A claim returned `count` jobs. */
  claimed: [count: number];
  /** Every claim's round trip, whether or not it found jobs (metrics). */
  "claim-done": [count: number];
  "claim-failed": [error: unknown];
  /** waitedMs: from the job's run_at to this start. */
  started: [job: Job, waitedMs: number];
  completed: [job: Job, ms: number];
  failed: [job: Job, error: unknown, outcome: FailedOutcome, ms: number];
  /** The job's lease lapsed and it was taken back: its result, or its failure, was discarded. */
  "lease-lost": [job: Job, ms: number];
  /** q.cancel() took the job while it ran: it was aborted, and nothing it did after that counts. */
  cancelled: [job: Job];
  stopped: [];
}
