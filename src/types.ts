// The public types of pgq. Everything here is part of the public API (README.md, "Library").
import type { Logger } from "pino";
import type { Sql, TransactionSql } from "postgres";
import type { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "./job-defaults.js";
import type { AnyJobState, FinalState } from "./job-state.js";

export interface ConnectOptions {
  /** Default: process.env.DATABASE_URL. */
  databaseUrl?: string;
  /** An existing postgres.js instance; q.close() leaves it open. */
  sql?: Sql;
  /** Default "pgq": lowercase letters, digits and underscores. */
  schema?: string;
  /** Default: a silent logger. */
  logger?: Logger;
  /** Largest payload accepted, in bytes of serialised JSON. Default 1 MiB. */
  maxPayloadBytes?: number;
  /**
   * "transaction" when the connection goes through a pooler in transaction mode (PgBouncer's
   * pool_mode = transaction), where a session lasts one transaction: pgq then prepares no
   * statements, never LISTENs (workers poll every pollIntervalMs) and keeps no state in a
   * session. A `sql` you pass must then be made with `prepare: false`. Default "none": a direct
   * connection, or a pooler in session mode.
   */
  pooler?: Pooler;
}

export type Pooler = "none" | "transaction";

/** Defaults: {@link DEFAULT_BACKOFF}. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. Retry n waits about baseMs * 2^(n-1). */
  baseMs?: number;
  /** The longest delay between attempts, in ms; never less than baseMs. */
  maxMs?: number;
}

export interface EnqueueOptions {
  /** Lower runs first; default {@link DEFAULT_PRIORITY}. */
  priority?: number;
  /** Not before this time (database time decides). */
  runAt?: Date;
  /** Not before this many ms from now (database time). */
  delayMs?: number;
  /** Attempts before the job moves to dead_jobs; default {@link DEFAULT_MAX_ATTEMPTS}. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** A per-job attempt timeout in ms, overriding the worker's timeoutMs. */
  timeoutMs?: number;
  /** At most one live job with this key per queue: a duplicate returns the live job's id. */
  dedupeKey?: string;
  /** Jobs with the same key (in one queue) run one at a time, in enqueue order. */
  groupKey?: string;
  /** Never started after this time: the job is finished as expired instead. */
  expiresAt?: Date;
  /** Never started later than this many ms after it is due (runAt or delayMs): expiresAt, relative. */
  ttlMs?: number;
  /**
   * Enqueue inside this transaction: the job exists only if it commits. A transaction or client
   * of postgres.js (any copy), pg, Kysely, Drizzle, Knex, TypeORM or Prisma, or a
   * transactionAdapter (README, "Using pgq with your database library").
   */
  tx?: Transaction;
}

type AnyMethod = (...args: never[]) => unknown;

/**
 * What `tx` accepts, by shape: pgq checks the object at run time and refuses one it cannot use
 * with a ValidationError (INVALID_OPTION) before any SQL.
 */
export type Transaction =
  | TransactionSql
  | Sql
  /** postgres.js, another copy */
  | { unsafe: AnyMethod }
  /** pg's Client, PoolClient or Pool; TypeORM's EntityManager or QueryRunner */
  | { query: AnyMethod }
  /** Kysely's Transaction */
  | { executeQuery: AnyMethod }
  /** Knex's transaction */
  | { raw: AnyMethod }
  /** Drizzle's transaction */
  | { execute: AnyMethod }
  /** Prisma's interactive transaction client */
  | { $queryRawUnsafe: AnyMethod }
  | TransactionAdapter;

/** Made by transactionAdapter(run), for a library pgq does not recognise. */
export interface TransactionAdapter {
  readonly kind: string;
}

export interface Job<Payload = unknown> {
  /** A bigint id, as a string so that it survives JSON. */
  id: string;
  queue: string;
  payload: Payload;
  /** This attempt's number, from 1. */
  attempts: number;
  maxAttempts: number;
  priority: number;
  groupKey: string | null;
  createdAt: Date;
}

export interface JobContext {
  /**
   * Transaction mode: the job's own transaction. Writes through it commit atomically with the
   * job's completion, and roll back if the handler throws. Lease mode: the connection pool.
   */
  sql: Sql | TransactionSql;
  /** Aborted when the attempt times out, the lease is lost, or the worker is stopped hard. */
  signal: AbortSignal;
  /** A pino child logger bound to { queue, jobId, attempt, worker }. */
  log: Logger;
  /**
   * Records a small JSON value (at most 4 KiB serialised) as the job's progress, seen by
   * q.getJob() and `pgq job`. It is written at once, outside a transaction-mode job's
   * transaction, and rejects with LEASE_LOST if the job is no longer this worker's.
   */
  progress(value: unknown): Promise<void>;
}

/** The value a handler returns (JSON, limited like payloads) becomes the job's result (q.waitFor()). */
export type Handler<Payload = unknown> = (job: Job<Payload>, ctx: JobContext) => Promise<unknown> | unknown;

export type ProcessingMode = "transaction" | "lease";

export interface WorkOptions {
  /** Jobs run at once; default 1. */
  concurrency?: number;
  /** Default "transaction". */
  mode?: ProcessingMode;
  /** A claim lapses this long after the last renewal, unless renewed; default 30000. */
  leaseMs?: number;
  /** An attempt that runs longer fails and ctx.signal aborts. Default: no limit (lease mode), 5 minutes (transaction mode). */
  timeoutMs?: number;
  /** The safety-net poll, in ms, when no notification arrives; default 2000. */
  pollIntervalMs?: number;
  /** A name for this worker in logs and in locked_by; default host:pid:random. */
  name?: string;
  /** Listen for notifications (default true, or false with connect({ pooler: "transaction" })); false polls only. */
  listen?: boolean;
}

export interface StopOptions {
  /** How long in-flight jobs may run on before they are aborted and released; default no limit. */
  graceMs?: number;
}

export interface Worker {
  readonly name: string;
  /** Stop claiming, let in-flight jobs finish (within graceMs), release the rest, then resolve. */
  stop(options?: StopOptions): Promise<void>;
  /** Resolves once the worker has started listening and made its first claim. */
  readonly ready: Promise<void>;
}

/**
 * A queue's jobs by state (src/job-state.ts defines each). A job waiting behind its group's head
 * counts as scheduled. Counts are exact up to 10,000 and estimated beyond (q.inspect() says which).
 */
export interface QueueStats {
  queue: string;
  ready: number;
  scheduled: number;
  running: number;
  retrying: number;
  dead: number;
  /** How long the oldest ready job has waited past its run_at, on the database's clock. */
  oldestReadyAgeMs: number | null;
}

export interface Stats {
  queues: QueueStats[];
}

/** What a schedule does about ticks missed while no worker ran: "latest" enqueues one job for
 *  the most recent of them (the default), "none" skips them all. */
export type CatchUpPolicy = "latest" | "none";

export interface ScheduleOptions {
  /** The IANA time zone the cron expression is read in; default "UTC". */
  timezone?: string;
  /** Default "latest": after downtime, one job for all the missed ticks, never one per tick. */
  catchUp?: CatchUpPolicy;
}

export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  queue: string;
  payload: unknown;
  catchUp: CatchUpPolicy;
  /** The earliest tick that has not had its job yet. */
  nextTickAt: Date;
  /** The tick of the last job this schedule enqueued. */
  lastTickAt: Date | null;
}

export interface Subscription {
  queue: string;
  pattern: string;
  createdAt: Date;
}

/** The jobs a publish creates take the same options as enqueue, `tx` included. */
export type PublishOptions = EnqueueOptions;

export interface RateLimit {
  /** At most this many jobs start... */
  count: number;
  /** ...in any window of this many ms. */
  perMs: number;
}

/** Per-queue settings, stored in pgq.queues and read by every worker (q.setQueue()). A key left
 *  out keeps its value; null clears a limit, or for retentionMs and ttlMs restores the default. */
export interface QueueSettings {
  /** A paused queue is not claimed from (running jobs finish; enqueue still works). */
  paused?: boolean;
  /** Running jobs of this queue, across all workers. */
  concurrency?: number | null;
  /** Running jobs per groupKey (1 = today's ordered groups). */
  keyConcurrency?: number | null;
  /** Starts per interval, whole queue. */
  rateLimit?: RateLimit | null;
  /** Starts per interval, per groupKey. */
  keyRateLimit?: RateLimit | null;
  /** How long finished jobs stay in history; default 7 days, 0 keeps none. */
  retentionMs?: number | null;
  /** Jobs not started this long after they were due are never run; default none. */
  ttlMs?: number | null;
}

/** A job wherever it is (q.getJob()): waiting or running in pgq.jobs, finished in pgq.history, or in pgq.dead_jobs. */
export interface JobInfo {
  id: string;
  queue: string;
  state: AnyJobState;
  payload: unknown;
  /** What the handler returned, once completed. */
  result: unknown;
  /** The last ctx.progress() value. */
  progress: unknown;
  priority: number;
  attempts: number;
  maxAttempts: number;
  groupKey: string | null;
  lastError: string | null;
  /** One entry per failed attempt: { attempt, at, worker, error, details }. */
  errors: unknown[];
  createdAt: Date;
  /** When it is due (waiting jobs). */
  runAt: Date | null;
  /** The first attempt's start. */
  startedAt: Date | null;
  finishedAt: Date | null;
  expiresAt: Date | null;
  /** The worker running it now, or the one that finished it. */
  worker: string | null;
  /** Running jobs: when the lease lapses unless renewed. */
  lockedUntil: Date | null;
}

export interface WaitOptions {
  /** Reject with WAIT_TIMEOUT after this many ms; default: wait as long as it takes. */
  timeoutMs?: number;
}

export type EnqueueAndWaitOptions = Omit<EnqueueOptions, "tx"> & WaitOptions;

export interface HistoryOptions {
  queue?: string;
  state?: FinalState;
  /** Finished in the last this many ms; default an hour. */
  sinceMs?: number;
  /** Newest first, at most this many; default 100. */
  limit?: number;
  /** Where the previous page ended: its `next`, with the same queue and state. */
  cursor?: string;
}

/** q.history()'s answer: finished jobs, newest first, and where the next page starts (null: none). */
export type HistoryPage = JobInfo[] & { next: string | null };
