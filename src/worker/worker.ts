// The worker: one fetch loop per worker, `concurrency` independent execution slots, a lease
// heartbeat, and the rescue of jobs whose worker died.
//
// The fetch loop claims up to the number of free slots in one statement and never waits for a
// batch to finish: each job frees its own slot. It sleeps until a notification for one of its
// queues, a freed slot (when the last claim suggested more work), or the safety-net poll.
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { inspect } from "node:util";
import type { Sql } from "postgres";
import type { Logger } from "pino";
import { ClaimAhead } from "./claim-ahead.js";
import { claimJobs, nextDueInMs, type ClaimedJob } from "../sql/claim.js";
import { completeInTransaction, completeJobs } from "../sql/complete.js";
import { isDatabaseOutage, isReadOnlyError } from "../db/outage.js";
import { bounded, type ConnectionSource } from "../db/connections.js";
import { DatabaseTimeoutError, JobTimeoutError, LeaseLostError, PgqError, ValidationError, WorkerStoppedError } from "../errors.js";
import { failJobs } from "../sql/fail.js";
import { JobConnection } from "./job-connection.js";
import type { Listener } from "./listener.js";
import { releaseJobs } from "../sql/release.js";
import { renewLeases } from "../sql/renew.js";
import { rescueLapsedLeases } from "../maintenance/rescuer.js";
import { retryDelayMs } from "../retry-policy.js";
import { Scheduler, SCHEDULER_CHECK_MS } from "../maintenance/scheduler.js";
import type { Tables } from "../db/tables.js";
import type { Handler, Job, ProcessingMode, StopOptions, WorkOptions, Worker } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";

/** Bound on every statement the worker itself runs (claim, renew, complete, fail, rescue). */
const STATEMENT_BOUND_MS = 15_000;
const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_TRANSACTION_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_POLL_MS = 2_000;
const DB_RETRY_MAX_MS = 10_000;
const RESCUE_MAX_INTERVAL_MS = 5_000;

export interface WorkerSettings {
  name: string;
  queues: string[];
  concurrency: number;
  mode: ProcessingMode;
  leaseMs: number;
  timeoutMs: number | null;
  pollIntervalMs: number;
  listen: boolean;
}

export type Handlers = Handler | Record<string, Handler>;

/** Checks the arguments of q.work(); throws ValidationError before anything starts. */
export function workerSettings(queueOrQueues: string | string[], handlers: Handlers, options: WorkOptions = {}): WorkerSettings {
  const queues = Array.isArray(queueOrQueues) ? [...new Set(queueOrQueues)] : [queueOrQueues];
  if (queues.length === 0) throw new ValidationError("INVALID_QUEUE_NAME", "work() needs at least one queue");
  queues.forEach((q) => assertQueueName(q));
  if (typeof handlers !== "function") {
    if (handlers === null || typeof handlers !== "object") {
      throw new ValidationError("INVALID_OPTION", "the handler must be a function, or an object mapping queue names to functions");
    }
    for (const queue of queues) {
      if (typeof handlers[queue] !== "function") {
        throw new ValidationError("INVALID_OPTION", `no handler function for queue ${JSON.stringify(queue)}`);
      }
    }
  }
  const { concurrency = 1, mode = "transaction", leaseMs = DEFAULT_LEASE_MS, pollIntervalMs = DEFAULT_POLL_MS } = options;
  assertInteger(concurrency, "concurrency", 1, 1000);
  if (mode !== "transaction" && mode !== "lease") {
    throw new ValidationError("INVALID_OPTION", `mode must be "transaction" or "lease" (got ${JSON.stringify(mode)})`);
  }
  assertInteger(leaseMs, "leaseMs", 100);
  assertInteger(pollIntervalMs, "pollIntervalMs", 10);
  const timeoutMs = options.timeoutMs ?? (mode === "transaction" ? DEFAULT_TRANSACTION_TIMEOUT_MS : null);
  if (timeoutMs !== null) assertInteger(timeoutMs, "timeoutMs", 1);
  return {
    name: options.name ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`,
    queues,
    concurrency,
    mode,
    leaseMs,
    timeoutMs,
    pollIntervalMs,
    listen: options.listen ?? true,
  };
}

export interface WorkerDeps {
  /** For claims, renewals, completions and failures, and lease-mode handlers' ctx.sql. */
  sql: Sql;
  /** Where transaction-mode slots open their own connections. */
  connection: ConnectionSource;
  /** Opens a pool like `sql` (which the worker owns and closes), to replace one that stopped answering. */
  reopenPool?: () => Sql;
  listener: Listener | undefined;
  /** Behind a transaction-mode pooler: a slot's backend changes with every transaction. */
  pooled?: boolean;
  tables: Tables;
  log: Logger;
}

interface Running {
  claimed: ClaimedJob;
  controller: AbortController;
  /** The handler returned: the job is being completed, and its lease no longer matters. */
  finishing: boolean;
  renewedAt: number;
}

/** A job claimed ahead of a free slot (claim-ahead.ts): its lease is renewed while it waits. */
interface Waiting {
  claimed: ClaimedJob;
  renewedAt: number;
}

interface WorkerEvents {
  started: [job: Job];
  completed: [job: Job, ms: number];
  failed: [job: Job, error: unknown, outcome: "retrying" | "dead" | "unrecorded"];
  "lease-lost": [job: Job];
  claimed: [count: number];
}

export class PgqWorker extends EventEmitter<WorkerEvents> implements Worker {
  readonly name: string;
  readonly ready: Promise<void>;
  private readonly running = new Map<string, Running>();
  private readonly waiting: Waiting[] = [];
  private readonly claimAhead: ClaimAhead;
  private readonly executions = new Set<Promise<void>>();
  /** Transaction mode: one connection per slot, idle ones here. */
  private readonly idleConnections: JobConnection[] = [];
  private readonly connections: JobConnection[] = [];
  private readonly log: Logger;
  private readonly completer: Completer;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private loopDone: Promise<void> | undefined;
  /** There may be claimable jobs: set by notifications, the poll and full claims. */
  private pending = true;
  /** When the loop next claims without being woken: the poll, or sooner for a job coming due. */
  private nextPollAt = 0;
  private wakeUp: (() => void) | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: WorkerSettings,
    private readonly handlers: Handlers,
    private readonly deps: WorkerDeps,
  ) {
    super();
    this.name = settings.name;
    this.log = deps.log.child({ worker: settings.name });
    this.completer = new Completer(() => this.deps.sql, deps.tables);
    this.claimAhead = new ClaimAhead(Math.min(1000, 8 * settings.concurrency));
    this.ready = this.start();
  }

  private async start(): Promise<void> {
    const { listener } = this.deps;
    if (listener) {
      const queues = new Set(this.settings.queues);
      listener.on("notify", (payload) => {
        const { queue, dueInMs } = parseNotification(payload);
        if (!queues.has(queue)) return;
        if (dueInMs > 0) this.wakeIn(dueInMs);
        else this.wake(true);
      });
      listener.on("restored", () => this.wake(true));
      await listener.start({ notifyVia: () => this.deps.sql, pollIntervalMs: this.settings.pollIntervalMs });
    }
    const heartbeatMs = Math.max(50, Math.floor(this.settings.leaseMs / 3));
    this.every(heartbeatMs, () => this.renew());
    // Not slower than RESCUE_MAX_INTERVAL_MS whatever the poll: other workers' lapsed jobs wait on it.
    this.every(Math.min(Math.max(this.settings.pollIntervalMs, 1000), RESCUE_MAX_INTERVAL_MS), () => this.rescue());
    // Every worker enqueues due cron ticks; the database keeps it to one job per tick.
    const scheduler = new Scheduler(() => this.deps.sql, this.deps.tables, this.log);
    this.every(SCHEDULER_CHECK_MS, () => scheduler.runIfDue());
    let firstClaim!: () => void;
    const claimed = new Promise<void>((resolve) => (firstClaim = resolve));
    this.loopDone = this.loop(firstClaim);
    await claimed;
    this.log.debug({ queues: this.settings.queues, mode: this.settings.mode }, "worker started");
  }

  /**
   * Stops in two stages. First, claiming stops and in-flight jobs may finish. Once graceMs
   * has passed (default: no limit), the jobs still running are aborted (ctx.signal) and
   * handed back to the queue without spending an attempt. A second call may shorten the
   * grace, as a second Ctrl-C does in the CLI.
   */
  stop(options: StopOptions = {}): Promise<void> {
    const { graceMs } = options;
    if (graceMs !== undefined) {
      assertInteger(graceMs, "graceMs", 0);
      clearTimeout(this.graceTimer);
      this.graceTimer = setTimeout(() => this.abortAll(new WorkerStoppedError()), graceMs);
    }
    this.stopped ??= (async () => {
      this.stopping = true;
      await this.ready;
      this.wake(false);
      await this.loopDone;
      await this.release(this.waiting.splice(0).map((w) => w.claimed), this.log);
      while (this.executions.size > 0) await Promise.allSettled([...this.executions]);
      clearTimeout(this.graceTimer);
      this.timers.forEach(clearInterval);
      await this.completer.idle();
      await Promise.all(this.connections.map((c) => c.close()));
      await this.deps.listener?.close();
      if (this.deps.reopenPool) await this.deps.sql.end({ timeout: 5 });
      this.log.debug("worker stopped");
    })();
    return this.stopped;
  }

  private abortAll(reason: Error): void {
    for (const r of this.running.values()) if (!r.finishing) r.controller.abort(reason);
  }

  private async loop(firstClaim: () => void): Promise<void> {
    let dbFailures = 0;
    // On start and after each poll: if the claim finds nothing, ask when the next job is due.
    let askWhenDue = true;
    this.nextPollAt = performance.now() + this.settings.pollIntervalMs;
    while (!this.stopping) {
      const claimStarted = performance.now();
      const ahead = this.claimAhead.target(claimStarted);
      const want = this.settings.concurrency - this.running.size + ahead - this.waiting.length;
      // Topping up a buffer that is still half full would only make claims smaller.
      if (this.pending && want > 0 && this.waiting.length <= ahead / 2) {
        this.pending = false;
        try {
          const jobs = await bounded(
            claimJobs(this.deps.sql, this.deps.tables, {
              queues: this.settings.queues,
              limit: want,
              worker: this.name,
              leaseMs: this.settings.leaseMs,
            }),
            STATEMENT_BOUND_MS,
            "claiming jobs",
          );
          const claimed = performance.now();
          this.claimAhead.claimTook(claimed - claimStarted);
          if (dbFailures > 0) this.log.info("claiming works again");
          dbFailures = 0;
          // A full batch suggests more is waiting: claim again as soon as a slot frees.
          if (jobs.length === want) this.pending = true;
          for (const job of jobs) this.waiting.push({ claimed: job, renewedAt: claimed });
          this.startWaiting();
          if (jobs.length > 0) this.emit("claimed", jobs.length);
          if (askWhenDue && jobs.length < want) {
            const dueInMs = await bounded(nextDueInMs(this.deps.sql, this.deps.tables, this.settings.queues), STATEMENT_BOUND_MS, "finding the next due job");
            if (dueInMs !== null) this.wakeIn(dueInMs);
          }
          askWhenDue = false;
        } catch (error) {
          this.pending = true;
          const retryInMs = Math.min(DB_RETRY_MAX_MS, 100 * 2 ** Math.min(dbFailures++, 10));
          this.log.warn({ err: error, retryInMs }, "claiming jobs failed; retrying");
          if (error instanceof DatabaseTimeoutError) this.recyclePool("a statement did not settle", 0);
          // Read-only sessions still answer: their statements may finish. Destroying a connection
          // while it fetches types is an unhandled rejection in postgres.js 3.4.9 (porsager/postgres#1192).
          else if (isReadOnlyError(error)) this.recyclePool("its sessions were read-only", 5);
          firstClaim();
          await this.sleep(retryInMs);
          continue;
        }
        firstClaim();
        continue;
      }
      await this.sleep(Math.max(0, this.nextPollAt - performance.now()));
      if (performance.now() >= this.nextPollAt) {
        this.pending = true;
        askWhenDue = true;
        this.nextPollAt = performance.now() + this.settings.pollIntervalMs;
      }
    }
    firstClaim();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private wake(newWork: boolean): void {
    if (newWork) this.pending = true;
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }

  /**
   * Replaces a pool whose statements stopped settling. After a connection dies with a write
   * still buffered, postgres.js 3.4.9 never flushes that connection again (its write timer is
   * not reset), so its later statements hang until the bound; a fresh pool does not have it.
   * Also replaces a read-only pool: a session keeps the default_transaction_read_only it started
   * with, so sessions opened while the database was read-only would refuse writes after it reverts.
   */
  private recyclePool(why: string, graceSeconds: number): void {
    const { reopenPool } = this.deps;
    if (!reopenPool) return;
    const old = this.deps.sql;
    this.deps.sql = reopenPool();
    void old.end({ timeout: graceSeconds }).catch(() => undefined);
    this.log.warn(`replaced the worker's connection pool: ${why}`);
  }

  private newConnection(): JobConnection {
    const connection = new JobConnection(this.deps.connection, this.log, this.deps.pooled);
    this.connections.push(connection);
    return connection;
  }

  /** Claims again in `ms`: a delayed job or a retry comes due then. */
  private wakeIn(ms: number): void {
    const at = performance.now() + ms;
    if (at < this.nextPollAt) {
      this.nextPollAt = at;
      this.wake(false);
    }
  }

  /** Starts waiting jobs while slots are free; after stop(), they are released instead. */
  private startWaiting(): void {
    while (!this.stopping && this.waiting.length > 0 && this.running.size < this.settings.concurrency) {
      const { claimed, renewedAt } = this.waiting.shift()!;
      this.track(this.execute(claimed, renewedAt));
    }
  }

  /** A slot is free: its job finished, or (lease mode) only its batched completion is left. */
  private freeSlot(id: string): void {
    if (!this.running.delete(id)) return;
    this.claimAhead.jobFinished(performance.now());
    this.startWaiting();
    this.wake(false);
  }

  private track(execution: Promise<void>): void {
    this.executions.add(execution);
    void execution.finally(() => this.executions.delete(execution));
  }

  private handlerFor(queue: string): Handler {
    return typeof this.handlers === "function" ? this.handlers : this.handlers[queue]!;
  }

  private async execute(claimed: ClaimedJob, renewedAt: number): Promise<void> {
    const job = publicJob(claimed);
    const entry: Running = { claimed, controller: new AbortController(), finishing: false, renewedAt };
    this.running.set(claimed.id, entry);
    const log = this.log.child({ queue: job.queue, jobId: job.id, attempt: job.attempts });
    const { signal } = entry.controller;
    const timeoutMs = claimed.timeout_ms ?? this.settings.timeoutMs;
    const timer = timeoutMs === null ? undefined : setTimeout(() => entry.controller.abort(new JobTimeoutError(timeoutMs)), timeoutMs);
    const started = performance.now();
    this.emit("started", job);
    try {
      const handler = this.handlerFor(job.queue);
      const { sql, tables } = this.deps;
      if (this.settings.mode === "transaction") {
        const connection = this.idleConnections.pop() ?? this.newConnection();
        // An aborted attempt must roll back now, not when the handler's slow query ends.
        const cancel = () => {
          if (!entry.finishing) connection.cancelRunning(sql).catch((e: unknown) => log.warn({ err: e }, "could not cancel the handler's query"));
        };
        signal.addEventListener("abort", cancel, { once: true });
        const transaction = connection.transaction(async (tx) => {
          await untilAborted(() => handler(job, { sql: tx, signal, log }), signal);
          entry.finishing = true;
          // Not awaited here: the completion travels with the COMMIT (complete.ts).
          return { completed: completeInTransaction(tx, tables, job.id, claimed.lease_token) };
        });
        void transaction.finally(() => {
          signal.removeEventListener("abort", cancel);
          this.idleConnections.push(connection);
        }).catch(() => undefined);
        const { completed } = await bounded(transaction, (timeoutMs ?? this.settings.leaseMs) + STATEMENT_BOUND_MS, `job ${job.id}'s transaction`);
        if (!(await completed)) throw new LeaseLostError(job.id);
      } else {
        await untilAborted(() => handler(job, { sql, signal, log }), signal);
        entry.finishing = true;
        // The completion is batched with others; the slot need not wait for it.
        this.freeSlot(claimed.id);
        if (!(await this.completer.complete(job.id, claimed.lease_token))) throw new LeaseLostError(job.id);
      }
      const ms = performance.now() - started;
      log.debug({ ms }, "job completed");
      this.emit("completed", job, ms);
    } catch (error) {
      await this.recordFailure(entry, job, error, log);
    } finally {
      clearTimeout(timer);
      this.freeSlot(claimed.id);
    }
  }

  private async recordFailure(entry: Running, job: Job, error: unknown, log: Logger): Promise<void> {
    if (error instanceof LeaseLostError) {
      log.warn({ err: error }, "lost the job's lease; its result was discarded");
      this.emit("lease-lost", job);
      return;
    }
    const { claimed } = entry;
    if (entry.controller.signal.reason instanceof WorkerStoppedError && !entry.finishing) {
      await this.release([claimed], log);
      return;
    }
    // When the database failed, not the job (database-errors.ts), the job waits for no backoff:
    // it runs again as soon as the database takes work. The attempt the claim counted stays.
    const retryInMs = isDatabaseOutage(error)
      ? 0
      : retryDelayMs(claimed.attempts, { baseMs: claimed.backoff_base_ms, maxMs: claimed.backoff_max_ms });
    let outcome: "retrying" | "dead" | "unrecorded" = "unrecorded";
    // A failure that coincides with a lost connection (a restart, a failover) is recorded once
    // the database answers again, while the heartbeat keeps the lease: the job then retries
    // after its backoff instead of waiting for the lease to lapse.
    for (let delayMs = 250; ; delayMs *= 2) {
      try {
        const [result] = await bounded(
          failJobs(this.deps.sql, this.deps.tables, [{ id: job.id, token: claimed.lease_token, error: describeError(error), retryInMs }]),
          STATEMENT_BOUND_MS,
          `recording job ${job.id}'s failure`,
        );
        if (!result) {
          log.warn({ err: error }, "the job failed after its lease was lost; another worker has it");
          this.emit("lease-lost", job);
          return;
        }
        outcome = result.outcome;
        break;
      } catch (recordError) {
        if (performance.now() + delayMs >= entry.renewedAt + this.settings.leaseMs) {
          log.error({ err: recordError }, "could not record the failure; the attempt counts when the lease lapses");
          break;
        }
        log.debug({ err: recordError, retryInMs: delayMs }, "could not record the failure yet; retrying");
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
    if (outcome === "retrying") {
      log.warn({ err: error, retryInMs }, "job failed; it will be retried");
      this.wakeIn(retryInMs);
    }
    else if (outcome === "dead") log.error({ err: error }, "job failed on its last attempt and moved to dead_jobs");
    this.emit("failed", job, error, outcome);
  }

  /** Hands jobs back to the queue, without spending an attempt, when the worker stops. */
  private async release(jobs: ClaimedJob[], log: Logger): Promise<void> {
    if (jobs.length === 0) return;
    try {
      const released = await bounded(
        releaseJobs(this.deps.sql, this.deps.tables, jobs.map((j) => j.id), jobs.map((j) => j.lease_token)),
        STATEMENT_BOUND_MS,
        "releasing jobs",
      );
      log.info({ jobs: jobs.length, released: released.size }, "worker stopping: released unfinished jobs for other workers");
    } catch (error) {
      log.error({ err: error, jobs: jobs.length }, "could not release jobs; they run again when their leases lapse");
    }
  }

  /** The heartbeat: renews the leases of every running and waiting job in one statement. */
  private async renew(): Promise<void> {
    const held = [...this.running.values()].filter((r) => !r.finishing);
    const waiting = [...this.waiting];
    const all: Waiting[] = [...held, ...waiting];
    if (all.length === 0) return;
    const now = performance.now();
    let renewed: Set<string> | undefined;
    try {
      renewed = await bounded(
        renewLeases(this.deps.sql, this.deps.tables, all.map((e) => e.claimed.id), all.map((e) => e.claimed.lease_token), this.settings.leaseMs),
        Math.max(1000, this.settings.leaseMs / 3),
        "renewing leases",
      );
      for (const e of all) if (renewed.has(e.claimed.id)) e.renewedAt = now;
    } catch (error) {
      this.log.warn({ err: error }, "renewing leases failed");
    }
    // Not renewed, or past leaseMs without a renewal: another worker may already have the job.
    const lost = (e: Waiting) => (renewed ? !renewed.has(e.claimed.id) : performance.now() - e.renewedAt > this.settings.leaseMs);
    for (const r of held) if (!r.finishing && lost(r)) r.controller.abort(new LeaseLostError(r.claimed.id));
    for (const w of waiting) {
      if (!lost(w)) continue;
      // It may have started meanwhile; then its slot's own renewal decides.
      const at = this.waiting.indexOf(w);
      if (at >= 0) this.waiting.splice(at, 1);
    }
  }

  private async rescue(): Promise<void> {
    try {
      const rescued = await bounded(rescueLapsedLeases(this.deps.sql, this.deps.tables), STATEMENT_BOUND_MS, "rescuing lapsed leases");
      if (rescued.length > 0) {
        this.log.warn({ jobs: rescued.length }, "rescued jobs whose worker stopped renewing their lease");
        this.wake(true);
      }
    } catch (error) {
      this.log.debug({ err: error }, "rescuing lapsed leases failed");
    }
  }

  /** Runs `task` every `ms`, never overlapping itself. */
  private every(ms: number, task: () => Promise<void>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void task().finally(() => (busy = false));
    }, ms);
    this.timers.push(timer);
  }
}

/** A notification's payload is the queue's name, then, for a job that is not due yet, a
 *  newline and how many ms from the commit it comes due (relative, so clocks do not matter). */
function parseNotification(payload: string): { queue: string; dueInMs: number } {
  const newline = payload.indexOf("\n");
  if (newline < 0) return { queue: payload, dueInMs: 0 };
  return { queue: payload.slice(0, newline), dueInMs: Number(payload.slice(newline + 1)) || 0 };
}

function publicJob(c: ClaimedJob): Job {
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

/** Runs the handler, settling early with the signal's reason if the attempt is aborted. */
function untilAborted(run: () => unknown, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    new Promise((r) => r(run())).then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function describeError(error: unknown): string {
  if (error instanceof PgqError) return `${error.name} [${error.code}]: ${error.message}`;
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return typeof error === "string" ? error : inspect(error, { depth: 4 });
}

/** Lease mode completes many jobs in one statement: completions that arrive while one
 *  statement runs go together in the next. */
class Completer {
  private waiting: { id: string; token: string; resolve: (done: boolean) => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly sql: () => Sql,
    private readonly tables: Tables,
  ) {}

  complete(id: string, token: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ id, token, resolve, reject });
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    });
  }

  async idle(): Promise<void> {
    await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, 1000);
      try {
        const done = await bounded(
          completeJobs(this.sql(), this.tables, batch.map((b) => b.id), batch.map((b) => b.token)),
          STATEMENT_BOUND_MS,
          "completing jobs",
        );
        batch.forEach((b) => b.resolve(done.has(b.id)));
      } catch (error) {
        batch.forEach((b) => b.reject(error));
      }
    }
  }
}
