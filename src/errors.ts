// Every error pgq throws on purpose is a PgqError with a stable `code` (listed in the README).
// Messages say what went wrong and what to do about it.

export type PgqErrorCode =
  | "INVALID_QUEUE_NAME"
  | "INVALID_PAYLOAD"
  | "PAYLOAD_TOO_LARGE"
  | "INVALID_OPTION"
  | "LEASE_LOST"
  | "JOB_CANCELLED"
  | "JOB_FAILED"
  | "JOB_NOT_FOUND"
  | "WAIT_TIMEOUT"
  | "JOB_TIMEOUT"
  | "WORKER_STOPPED"
  | "WORKER_LOST"
  | "DATABASE_UNREACHABLE"
  | "TOO_MANY_CONNECTIONS"
  | "DATABASE_TIMEOUT"
  | "MIGRATION_FAILED"
  | "SCHEMA_NOT_MIGRATED"
  | "CLIENT_CLOSED"
  | "LOCAL_POSTGRES_FAILED";

export class PgqError extends Error {
  readonly code: PgqErrorCode;
  constructor(code: PgqErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The caller passed something pgq refuses; nothing was written. */
export class ValidationError extends PgqError {
  constructor(
    code: "INVALID_QUEUE_NAME" | "INVALID_PAYLOAD" | "PAYLOAD_TOO_LARGE" | "INVALID_OPTION",
    message: string,
  ) {
    super(code, message);
  }
}

/** The worker no longer holds the job: its lease lapsed and another worker may have it. */
export class LeaseLostError extends PgqError {
  constructor(jobId: string) {
    super("LEASE_LOST", `job ${jobId}: this worker's lease lapsed and the job was taken back; its result was discarded`);
  }
}

/** q.cancel() cancelled the job while it ran: ctx.signal's reason, and what a waiter rejects with. */
export class JobCancelledError extends PgqError {
  constructor(readonly jobId: string) {
    super("JOB_CANCELLED", `job ${jobId} was cancelled; whatever it did after that was not committed`);
  }
}

/** What q.waitFor() rejects with when the job died or expired: its last error, or why it never ran. */
export class JobFailedError extends PgqError {
  constructor(
    readonly jobId: string,
    readonly state: "dead" | "expired",
    readonly lastError: string | null,
  ) {
    super("JOB_FAILED", state === "expired"
      ? `job ${jobId} expired before any worker started it`
      : `job ${jobId} failed on its last attempt: ${lastError ?? "no error was recorded"}`);
  }
}

/** q.waitFor() for a job that is nowhere: never enqueued, or finished in a queue that keeps no history. */
export class JobNotFoundError extends PgqError {
  constructor(readonly jobId: string) {
    super("JOB_NOT_FOUND", `job ${jobId} is not in pgq.jobs, pgq.history nor pgq.dead_jobs: it never existed, or finished in a queue that keeps no history (retentionMs 0)`);
  }
}

/** q.waitFor() gave up after timeoutMs; the job itself goes on. */
export class WaitTimeoutError extends PgqError {
  constructor(readonly jobId: string, timeoutMs: number) {
    super("WAIT_TIMEOUT", `job ${jobId} had not finished after ${timeoutMs} ms; it goes on, and q.waitFor() can wait again`);
  }
}

/** An attempt ran longer than its timeout. */
export class JobTimeoutError extends PgqError {
  constructor(timeoutMs: number) {
    super("JOB_TIMEOUT", `the attempt ran longer than its timeout of ${timeoutMs} ms`);
  }
}

/** A database call did not settle within its bound (the connection may be half-dead). */
export class DatabaseTimeoutError extends PgqError {
  constructor(what: string, ms: number) {
    super("DATABASE_TIMEOUT", `${what} did not finish within ${ms} ms; the connection may be lost`);
  }
}

/** The server refused this process's connections: it has no slots left (SQLSTATE 53300). */
export class TooManyConnectionsError extends PgqError {
  constructor(message: string, cause: unknown) {
    super("TOO_MANY_CONNECTIONS", message, { cause });
  }
}

/** The worker stopped before the attempt finished; the job was handed back without spending an attempt. */
export class WorkerStoppedError extends PgqError {
  constructor() {
    super("WORKER_STOPPED", "the worker stopped before the attempt finished; the job was released for another worker");
  }
}

/** Recorded by the rescue: the attempt's worker stopped renewing its lease (it died, hung, or lost the database). */
export class WorkerLostError extends PgqError {
  /** `leaseLapsedAt`, or null when the worker's session ended (src/worker/marker.ts) before its lease lapsed. */
  constructor(worker: string | null, leaseLapsedAt: Date | null) {
    super(
      "WORKER_LOST",
      `worker ${worker ?? "?"} stopped without finishing the attempt (it died, hung, or lost the database); ` +
        (leaseLapsedAt ? `its lease lapsed at ${leaseLapsedAt.toISOString()}` : "its database session ended"),
    );
  }
}

/** A method of a client that q.close() has closed: it opens nothing and runs nothing. */
export class ClientClosedError extends PgqError {
  constructor(method: string) {
    super("CLIENT_CLOSED", `${method} was called after q.close(): this client is closed; connect() again for a new one`);
  }
}
