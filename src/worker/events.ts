// The events a worker emits, for the CLI's status line, tests and (later) metrics.
import type { Job } from "../types.js";
import type { FailureResult } from "./completer.js";

export type FailedOutcome = Exclude<FailureResult, "lease-lost">;

export interface WorkerEvents {
  /** A claim returned `count` jobs. */
  claimed: [count: number];
  started: [job: Job];
  completed: [job: Job, ms: number];
  failed: [job: Job, error: unknown, outcome: FailedOutcome];
  /** The job's lease lapsed and it was taken back: its result, or its failure, was discarded. */
  "lease-lost": [job: Job];
  /** q.cancel() took the job while it ran: it was aborted, and nothing it did after that counts. */
  cancelled: [job: Job];
  stopped: [];
}
