// The executor runs one claimed job, in either processing mode, and settles it: completed,
// failed (retrying or dead), handed back (the worker stopped), or dropped (its lease was lost).
//
// transaction: the handler runs inside the job's own transaction, on the slot's connection,
//   and the completion is the transaction's last statement, fenced by the lease token: the
//   handler's writes commit exactly once, together with the completion, or not at all.
// lease: the handler runs while the heartbeat renews the lease, its ctx.sql a pool of the
//   worker's for handlers (pgq's own stays small: shared-connections.ts); the completion is
//   batched with others (completer.ts), after the slot is already free.
import type { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { bounded, STATEMENT_BOUND_MS } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import { isDatabaseOutage } from "../db/outage.js";
import type { Tables } from "../db/tables.js";
import { errorRecord } from "../error-record.js";
import { JobCancelledError, JobTimeoutError, LeaseLostError, WorkerStoppedError } from "../errors.js";
import { retryDelayMs } from "../retry-policy.js";
import type { ClaimedJob } from "../sql/claim.js";
import { completeInTransaction } from "../sql/complete.js";
import { recordProgress } from "../sql/progress.js";
import { processSpan, type AttemptOutcome } from "../telemetry/tracing.js";
import type { Job, JobContext } from "../types.js";
import { serializePayload } from "../validate.js";
import type { Completer } from "./completer.js";
import type { WorkerEvents } from "./events.js";
import { handlerFor, type Handlers, type WorkerSettings } from "./settings.js";
import type { SlotConnections } from "./slot-connections.js";
import type { AttemptAbort } from "./attempt-abort.js";
import type { Running } from "./slots.js";

export interface ExecutorDeps {
  settings: WorkerSettings;
  handlers: Handlers;
  pool: OwnPool;
  /** Lease mode only: the handlers' ctx.sql. */
  handlerSql: Sql | undefined;
  tables: Tables;
  completer: Completer;
  /** Transaction mode only. */
  connections: SlotConnections | undefined;
  /** Resolves once the worker's marker is held (worker.ts). */
  untilMarked: () => Promise<void>;
  events: EventEmitter<WorkerEvents>;
  log: Logger;
  /** The job no longer needs its slot (lease mode frees it before the batched completion). */
  freeSlot: (id: string) => void;
  /** A failed job retries in `ms`. */
  retryIn: (ms: number) => void;
  /** The largest result a handler may return, serialised: the client's maxPayloadBytes. */
  maxResultBytes: number;
}

/** ctx.progress() keeps a small value: it is rewritten on the job's row at every call. */
const MAX_PROGRESS_BYTES = 4096;

export class Executor {
  constructor(private readonly deps: ExecutorDeps) {}

  /** Runs the job to the end; never rejects. */
  async run(entry: Running): Promise<void> {
    const { settings, events } = this.deps;
    const { claimed } = entry;
    const job = publicJob(claimed);
    const log = this.deps.log.child({ queue: job.queue, jobId: job.id, attempt: job.attempts });
    const timeoutMs = claimed.timeout_ms ?? settings.timeoutMs;
    const timer = timeoutMs === null ? undefined : setTimeout(() => entry.abort.abort(new JobTimeoutError(timeoutMs)), timeoutMs);
    const started = performance.now();
    const span = processSpan(claimed, settings.mode);
    events.emit("started", job, waitedMs(entry, started));
    try {
      await span.run(() => (settings.mode === "transaction" ? this.inTransaction(entry, job, log, timeoutMs) : this.underLease(entry, job, log)));
      const ms = performance.now() - started;
      log.debug({ ms }, "job completed");
      events.emit("completed", job, ms);
      span.end("completed");
    } catch (error) {
      span.end(await this.failed(entry, job, error, log, started), error);
    } finally {
      clearTimeout(timer);
      this.deps.freeSlot(claimed.id);
    }
  }

  private async inTransaction(entry: Running, job: Job, log: Logger, timeoutMs: number | null): Promise<void> {
    const { pool, tables, settings } = this.deps;
    const connections = this.deps.connections!;
    const handler = handlerFor(this.deps.handlers, job.queue);
    const connection = connections.take();
    // An aborted attempt must roll back now, not when the handler's slow query ends.
    const stopCancelling = entry.abort.onAbort(() => {
      if (!entry.finishing) connection.cancelRunning(pool.sql).catch((e: unknown) => log.warn({ err: e }, "could not cancel the handler's query"));
    });
    const transaction = connection.transaction(async (tx) => {
      const value = await untilAborted(() => handler(job, this.context(entry, tx, log)), entry.abort);
      const result = this.resultText(value);
      entry.finishing = true;
      await this.deps.untilMarked();
      // Not awaited here: the completion travels with the COMMIT (sql/complete.ts).
      return { completed: completeInTransaction(tx, tables, job.id, entry.claimed.lease_token, result) };
    });
    void transaction
      .finally(() => {
        stopCancelling();
        connections.giveBack(connection);
      })
      .catch(() => undefined);
    const { completed } = await bounded(transaction, (timeoutMs ?? settings.leaseMs) + STATEMENT_BOUND_MS, `job ${job.id}'s transaction`);
    if (!(await completed)) throw new LeaseLostError(job.id);
  }

  private async underLease(entry: Running, job: Job, log: Logger): Promise<void> {
    const handler = handlerFor(this.deps.handlers, job.queue);
    const value = await untilAborted(() => handler(job, this.context(entry, this.deps.handlerSql!, log)), entry.abort);
    const result = this.resultText(value);
    entry.finishing = true;
    this.deps.freeSlot(job.id);
    if (!(await this.deps.completer.complete(job.id, entry.claimed.lease_token, result))) throw new LeaseLostError(job.id);
  }

  private context(entry: Running, sql: JobContext["sql"], log: Logger): JobContext {
    const { id, lease_token: token } = entry.claimed;
    return {
      sql,
      get signal() {
        return entry.abort.signal;
      },
      log,
      progress: async (value) => {
        const text = serializePayload(value, MAX_PROGRESS_BYTES, "the progress value");
        if (!(await recordProgress(this.deps.pool.sql, this.deps.tables, id, token, text))) throw new LeaseLostError(id);
      },
    };
  }

  /** What the handler returned, as the JSON text stored as the job's result; a bad one fails the attempt. */
  private resultText(value: unknown): string | null {
    return value === undefined ? null : serializePayload(value, this.deps.maxResultBytes, "the handler's result");
  }

  private async failed(entry: Running, job: Job, error: unknown, log: Logger, started: number): Promise<AttemptOutcome> {
    const { completer, events, settings } = this.deps;
    const { claimed } = entry;
    if (entry.abort.reason instanceof JobCancelledError) {
      log.info("job cancelled while it ran; nothing it did after that was kept");
      events.emit("cancelled", job);
      return "cancelled";
    }
    if (error instanceof LeaseLostError) return this.leaseLost(job, error, log, started, "lost the job's lease; its result was discarded");
    if (entry.abort.reason instanceof WorkerStoppedError && !entry.finishing) {
      await completer.release([claimed], log);
      return "released";
    }
    // When the database failed, not the job (db/outage.ts), the job waits for no backoff: it
    // runs again as soon as the database takes work. The attempt the claim counted stays.
    const retryInMs = isDatabaseOutage(error)
      ? 0
      : retryDelayMs(claimed.attempts, { baseMs: claimed.backoff_base_ms, maxMs: claimed.backoff_max_ms });
    const failure = { id: job.id, token: claimed.lease_token, error: errorRecord(error), retryInMs };
    const outcome = await completer.fail(failure, () => entry.renewedAt + settings.leaseMs, log);
    if (outcome === "lease-lost") return this.leaseLost(job, error, log, started, "the job failed after its lease was lost; another worker has it");
    // maxAttempts here rather than bound to every job's logger: a binding costs each job, not each failure.
    const { maxAttempts } = job;
    if (outcome === "retrying") {
      log.warn({ err: error, retryInMs, maxAttempts }, "job failed; it will be retried");
      this.deps.retryIn(retryInMs);
    } else if (outcome === "dead") log.error({ err: error, maxAttempts }, "job failed on its last attempt and moved to dead_jobs");
    events.emit("failed", job, error, outcome, performance.now() - started);
    return outcome;
  }

  private leaseLost(job: Job, error: unknown, log: Logger, started: number, message: string): "lease-lost" {
    log.warn({ err: error }, message);
    this.deps.events.emit("lease-lost", job, performance.now() - started);
    return "lease-lost";
  }
}

export function publicJob(c: ClaimedJob): Job {
  return {
    id: c.id,
    queue: c.queue,
    payload: c.payload,
    attempts: c.attempts,
    maxAttempts: c.max_attempts,
    priority: c.priority,
    groupKey: c.group_key,
    createdAt: c.created_at,
  };
}

/** From run_at to now, by the database's clock up to the claim and this process's since. */
function waitedMs(entry: Running, now: number): number {
  return Math.max(0, entry.claimed.waited_ms + now - entry.claimedAt);
}

/** Runs the handler, settling early with the reason if the attempt is aborted. */
function untilAborted(run: () => unknown, abort: AttemptAbort): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (abort.aborted) return reject(abort.reason);
    const stop = abort.onAbort(reject);
    new Promise((r) => r(run())).then(resolve, reject).finally(stop);
  });
}
