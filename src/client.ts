// connect(): the Queue object behind pgq's public API.
import { pino, type Logger } from "pino";
import type { Sql } from "postgres";
import { assertReachable, openPool, poolerOptions, type ConnectionSource } from "./db/connections.js";
import { listDeadJobs, purgeDeadJobs, retryDeadJobs, type DeadJob, type DeadJobFilter, type ListDeadJobsOptions, type PurgeDeadJobsOptions } from "./admin/dead-jobs.js";
import { checkingSchema } from "./db/schema-errors.js";
import { executorFor } from "./db/executor.js";
import { PoolGate } from "./db/pool-gate.js";
import { prepareEnqueue } from "./enqueue.js";
import { assertOpen, assertOptionsObject } from "./entry-checks.js";
import { insertJobs } from "./sql/insert-jobs.js";
import { ValidationError } from "./errors.js";
import { assertJobId, getJob, listHistory } from "./admin/history.js";
import { cancelJobs, CANCEL_BATCH } from "./sql/cancel.js";
import { maintainHistory } from "./sql/history.js";
import { Waiters } from "./waiters.js";
import { migrate } from "./admin/migrate.js";
import { assertSchemaName, DEFAULT_SCHEMA } from "./db/schema.js";
import { inspectQueues, type Inspection, type InspectOptions } from "./admin/inspect.js";
import { defineSchedule, listSchedules, prepareSchedule, removeSchedule } from "./admin/schedules.js";
import { poolSizeWarning } from "./db/pool-size.js";
import { queueStats } from "./admin/stats.js";
import { listWorkers, type WorkerInfo } from "./admin/workers.js";
import { tables, type Tables } from "./db/tables.js";
import { listSubscriptions, publish, subscribe, unsubscribe } from "./admin/topics.js";
import type {
  ConnectOptions, EnqueueAndWaitOptions, EnqueueOptions, HistoryOptions, HistoryPage, JobInfo, Pooler, WaitOptions, PublishOptions, QueueSettings, Schedule, ScheduleOptions, Stats, Subscription, WorkOptions,
} from "./types.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, assertInteger, assertQueueName } from "./validate.js";
import { listQueues, prepareQueueSettings, setQueue, type QueueConfig } from "./admin/queues.js";
import { Maintenance } from "./maintenance/maintenance.js";
import { SharedConnections } from "./worker/shared-connections.js";
import { workerSettings, type Handlers } from "./worker/settings.js";
import { PgqWorker } from "./worker/worker.js";
import { watchQueues } from "./telemetry/metrics.js";
import { readQueueGauges } from "./telemetry/queue-gauges.js";
import { sendSpan } from "./telemetry/tracing.js";

export interface Queue {
  /** The postgres.js pool pgq uses (yours, if you passed `sql`). */
  readonly sql: Sql;
  readonly schema: string;
  /** Creates or upgrades pgq's schema; idempotent and safe to run from many processes at once. */
  migrate(): Promise<string[]>;
  enqueue(queue: string, payload: unknown, options?: EnqueueOptions): Promise<{ id: string }>;
  /** Enqueues many jobs in one statement; returns their ids in order. */
  enqueueMany(queue: string, payloads: unknown[], options?: EnqueueOptions): Promise<string[]>;
  work(queueOrQueues: string | string[], handler: Handlers, options?: WorkOptions): PgqWorker;
  stats(): Promise<Stats>;
  /** Queue depths in bounded time, with estimates for large counts (what `pgq inspect` shows). */
  inspect(options?: InspectOptions): Promise<Inspection>;
  /** Registered workers, whether each is alive, and the jobs each runs. */
  workers(): Promise<WorkerInfo[]>;
  /** Jobs that exhausted their attempts: list them, send them back to the queue, or delete them. */
  readonly deadJobs: {
    list(options?: ListDeadJobsOptions): Promise<DeadJob[]>;
    /** Returns the ids moved back to pgq.jobs. */
    retry(filter?: DeadJobFilter): Promise<string[]>;
    /** Returns how many were deleted. */
    purge(options?: PurgeDeadJobsOptions): Promise<number>;
  };
  /** Creates or updates a cron schedule: one job per tick in `queue`, however many workers run. */
  schedule(name: string, cron: string, queue: string, payload?: unknown, options?: ScheduleOptions): Promise<void>;
  /** Removes a schedule; false if there was none. */
  unschedule(name: string): Promise<boolean>;
  schedules(): Promise<Schedule[]>;
  /** Routes published topics matching `pattern` ("*" one word, "#" zero or more) to `queue`. */
  subscribe(queue: string, pattern: string): Promise<void>;
  /** Removes a subscription; false if there was none. */
  unsubscribe(queue: string, pattern: string): Promise<boolean>;
  subscriptions(): Promise<Subscription[]>;
  /** One job in every queue subscribed to the topic, in one statement; returns their ids. */
  publish(topic: string, payload: unknown, options?: PublishOptions): Promise<string[]>;
  /** A job wherever it is (waiting, running, history, dead) with its state and timeline; null if it is nowhere. */
  getJob(id: string): Promise<JobInfo | null>;
  /** Recently finished jobs, newest first, a page at a time (pass the answer's next as cursor). */
  history(options?: HistoryOptions): Promise<HistoryPage>;
  /**
   * Resolves with the job's result once it completed; rejects with JOB_FAILED once it died or
   * expired, JOB_CANCELLED once cancelled, WAIT_TIMEOUT after timeoutMs.
   */
  waitFor(id: string, options?: WaitOptions): Promise<unknown>;
  /** Enqueues a job and waits for its result: a remote call over pgq. */
  enqueueAndWait(queue: string, payload: unknown, options?: EnqueueAndWaitOptions): Promise<unknown>;
  /** Cancels a job, waiting or running (its ctx.signal aborts); false if it had already finished. */
  cancel(id: string): Promise<boolean>;
  /** Cancels every job of the queue, waiting or running; returns how many. */
  cancelQueue(queue: string): Promise<number>;
  /** Changes a queue's settings for every worker at its next claim; returns all of them. */
  setQueue(queue: string, settings: QueueSettings): Promise<QueueConfig>;
  /** Every worker stops claiming from the queue; running jobs finish, enqueue still works. */
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  /** Every queue with settings of its own. */
  queues(): Promise<QueueConfig[]>;
  /**
   * Stops this client's workers gracefully, then closes the pool pgq opened. Every later call
   * fails with CLIENT_CLOSED, but close() itself, which waits for the first one.
   */
  close(): Promise<void>;
}

export async function connect(options: ConnectOptions = {}): Promise<Queue> {
  assertOptionsObject("connect()", options);
  const schema = options.schema ?? DEFAULT_SCHEMA;
  assertSchemaName(schema);
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  assertInteger(maxPayloadBytes, "maxPayloadBytes", 2, 256 * 1024 * 1024);
  const log = options.logger ?? pino({ level: "silent" });
  const url = options.databaseUrl ?? process.env.DATABASE_URL;
  if (!options.sql && !url) {
    throw new ValidationError("INVALID_OPTION", "no database given: pass databaseUrl or sql to connect(), or set DATABASE_URL");
  }
  const pooler = options.pooler ?? "none";
  if (pooler !== "none" && pooler !== "transaction") {
    throw new ValidationError("INVALID_OPTION", `pooler must be "none" or "transaction" (got ${JSON.stringify(pooler)})`);
  }
  if (pooler === "transaction" && options.sql && options.sql.options.prepare !== false) {
    throw new ValidationError("INVALID_OPTION", 'behind a transaction-mode pooler, prepared statements break: make the sql you pass with postgres(url, { prepare: false })');
  }
  const sql = options.sql ?? openPool(url!, log, { max: 10, ...poolerOptions(pooler) });
  try {
    await assertReachable(sql);
  } catch (error) {
    if (!options.sql) await sql.end({ timeout: 0 });
    throw error;
  }
  return new Client(sql, options.sql ? undefined : url, tables(sql, schema), log, maxPayloadBytes, pooler);
}

class Client implements Queue {
  readonly schema: string;
  private readonly running = new Set<PgqWorker>();
  /** While workers run: pgq's pool, LISTEN and the marker, for all of them, and maintenance on that pool. */
  private shared: { connections: SharedConnections; maintenance: Maintenance } | undefined;
  /** Set when the last worker stopped: close() waits for maintenance to stop and the shared connections to close. */
  private sharedClosed: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private waiters: Waiters | undefined;
  /** Enqueues on q.sql, at most one per connection at a time (db/pool-gate.ts). */
  private readonly gate: PoolGate;
  private get closed(): boolean {
    return this.closing !== undefined;
  }

  constructor(
    readonly sql: Sql,
    /** Set when pgq opened the pool from a URL, and so closes it; workers' connections come from it too. */
    private readonly url: string | undefined,
    private readonly t: Tables,
    private readonly log: Logger,
    private readonly maxPayloadBytes: number,
    private readonly pooler: Pooler,
  ) {
    this.schema = t.schema;
    this.gate = new PoolGate(sql);
    this.unwatchQueues = watchQueues(() => readQueueGauges(sql, t));
  }

  /** Takes this client's queues out of the metrics' gauges. */
  private readonly unwatchQueues: () => void;

  async migrate(): Promise<string[]> {
    assertOpen(this.closed, "q.migrate()");
    const applied = await migrate(this.sql, this.schema);
    // History's partitions for the days ahead, before any worker's maintenance makes them.
    await maintainHistory(this.sql, this.t);
    return applied;
  }

  async enqueue(queue: string, payload: unknown, options: EnqueueOptions = {}): Promise<{ id: string }> {
    assertOpen(this.closed, "q.enqueue()");
    assertOptionsObject("q.enqueue()", options);
    const [id] = await this.enqueueMany(queue, [payload], options);
    return { id: id! };
  }

  async enqueueMany(queue: string, payloads: unknown[], options: EnqueueOptions = {}): Promise<string[]> {
    assertOpen(this.closed, "q.enqueueMany()");
    assertOptionsObject("q.enqueueMany()", options);
    if (!Array.isArray(payloads)) throw new ValidationError("INVALID_PAYLOAD", "enqueueMany needs an array of payloads");
    const prepared = prepareEnqueue(queue, payloads, options, this.maxPayloadBytes);
    const executor = executorFor(options.tx, this.sql);
    return sendSpan(prepared.queue, prepared.texts.length, (traceContext) =>
      checkingSchema(this.schema, this.gate.run(executor, () => insertJobs(executor, this.t, prepared.queue, prepared.texts, { ...prepared.settings, traceContext }))));
  }

  work(queueOrQueues: string | string[], handler: Handlers, options: WorkOptions = {}): PgqWorker {
    assertOpen(this.closed, "q.work()");
    assertOptionsObject("q.work()", options);
    const pooled = this.pooler === "transaction";
    if (pooled && options?.listen === true) {
      throw new ValidationError("INVALID_OPTION", 'listen: true cannot work with pooler: "transaction" (LISTEN needs a session of its own): connect without the pooler for it');
    }
    const settings = workerSettings(queueOrQueues, handler, pooled ? { ...options, listen: false } : options);
    const log = this.log;
    // Workers' statements run on pgq's pool, opened like the slots' connections and shared by the
    // client's workers (worker/shared-connections.ts): they never wait behind the application's
    // use of q.sql, and a pool that stops answering, or whose sessions were opened read-only, can
    // be replaced. Lease-mode handlers query through a pool of their worker's (worker.ts), so
    // that pgq's need not grow with them.
    if (!this.url) {
      const poolMax = this.sql.options.max;
      const warning = poolSizeWarning(poolMax, settings.concurrency);
      if (warning) log.warn({ poolMax, concurrency: settings.concurrency }, warning);
    }
    const shared = (this.shared ??= this.#share());
    const { connections } = shared;
    const listener = connections.join(settings);
    const worker = new PgqWorker(settings, handler, {
      claims: connections.claims, pool: connections.pool, refused: (error) => connections.refused(error), connection: this.connection,
      listener, marker: connections.marker, pooled, tables: this.t, log, maxResultBytes: this.maxPayloadBytes,
    });
    this.running.add(worker);
    shared.maintenance.start(settings.pollIntervalMs);
    worker.once("stopped", () => {
      this.running.delete(worker);
      if (!connections.leave(settings)) return;
      if (this.shared === shared) this.shared = undefined;
      const previous = this.sharedClosed;
      this.sharedClosed = Promise.all([previous, shared.maintenance.stop().then(() => connections.close())]).then(() => undefined);
    });
    void worker.ready.then(undefined, () => undefined);
    return worker;
  }

  /** Where pgq opens connections of its own: the URL, or behind a pooler or with a caller's pool, that pool's options (prepare: false included). */
  private get connection(): ConnectionSource {
    return this.pooler === "transaction" || !this.url ? (this.sql.options as unknown as ConnectionSource) : this.url;
  }

  /** What the client's workers share, and rescue and cron once for all of them (src/maintenance/). */
  #share(): { connections: SharedConnections; maintenance: Maintenance } {
    const connections = new SharedConnections(this.connection, this.pooler, this.t, this.log);
    const maintenance = new Maintenance(connections.pool, this.t, this.log, connections.marker);
    maintenance.on("rescued", () => this.running.forEach((w) => w.wake()));
    return { connections, maintenance };
  }

  async stats(): Promise<Stats> {
    assertOpen(this.closed, "q.stats()");
    return checkingSchema(this.schema, queueStats(this.sql, this.schema));
  }

  async inspect(options?: InspectOptions): Promise<Inspection> {
    assertOpen(this.closed, "q.inspect()");
    assertOptionsObject("q.inspect()", options);
    return checkingSchema(this.schema, inspectQueues(this.sql, this.schema, options));
  }

  async workers(): Promise<WorkerInfo[]> {
    assertOpen(this.closed, "q.workers()");
    return checkingSchema(this.schema, listWorkers(this.sql, this.t));
  }

  readonly deadJobs = {
    list: async (options?: ListDeadJobsOptions) => {
      assertOpen(this.closed, "q.deadJobs.list()");
      assertOptionsObject("q.deadJobs.list()", options);
      return checkingSchema(this.schema, listDeadJobs(this.sql, this.schema, options));
    },
    retry: async (filter?: DeadJobFilter) => {
      assertOpen(this.closed, "q.deadJobs.retry()");
      assertOptionsObject("q.deadJobs.retry()", filter);
      return checkingSchema(this.schema, retryDeadJobs(this.sql, this.schema, filter));
    },
    purge: async (options?: PurgeDeadJobsOptions) => {
      assertOpen(this.closed, "q.deadJobs.purge()");
      assertOptionsObject("q.deadJobs.purge()", options);
      return checkingSchema(this.schema, purgeDeadJobs(this.sql, this.schema, options));
    },
  };

  async schedule(name: string, cron: string, queue: string, payload: unknown = null, options: ScheduleOptions = {}): Promise<void> {
    assertOpen(this.closed, "q.schedule()");
    assertOptionsObject("q.schedule()", options);
    await checkingSchema(this.schema, defineSchedule(this.sql, this.t, prepareSchedule(name, cron, queue, payload, options, this.maxPayloadBytes)));
  }

  async unschedule(name: string): Promise<boolean> {
    assertOpen(this.closed, "q.unschedule()");
    return checkingSchema(this.schema, removeSchedule(this.sql, this.t, name));
  }

  async schedules(): Promise<Schedule[]> {
    assertOpen(this.closed, "q.schedules()");
    return checkingSchema(this.schema, listSchedules(this.sql, this.t));
  }

  async subscribe(queue: string, pattern: string): Promise<void> {
    assertOpen(this.closed, "q.subscribe()");
    return checkingSchema(this.schema, subscribe(this.sql, this.t, queue, pattern));
  }

  async unsubscribe(queue: string, pattern: string): Promise<boolean> {
    assertOpen(this.closed, "q.unsubscribe()");
    return checkingSchema(this.schema, unsubscribe(this.sql, this.t, queue, pattern));
  }

  async subscriptions(): Promise<Subscription[]> {
    assertOpen(this.closed, "q.subscriptions()");
    return checkingSchema(this.schema, listSubscriptions(this.sql, this.t));
  }

  async publish(topic: string, payload: unknown, options: PublishOptions = {}): Promise<string[]> {
    assertOpen(this.closed, "q.publish()");
    assertOptionsObject("q.publish()", options);
    const executor = executorFor(options.tx, this.sql);
    return sendSpan(String(topic), 1, (traceContext) =>
      checkingSchema(this.schema, this.gate.run(executor, () => publish(executor, this.t, this.log, topic, payload, options, this.maxPayloadBytes, traceContext))));
  }

  async getJob(id: string): Promise<JobInfo | null> {
    assertOpen(this.closed, "q.getJob()");
    assertJobId(id);
    return checkingSchema(this.schema, getJob(this.sql, this.t, id));
  }

  async history(options: HistoryOptions = {}): Promise<HistoryPage> {
    assertOpen(this.closed, "q.history()");
    assertOptionsObject("q.history()", options);
    return checkingSchema(this.schema, listHistory(this.sql, this.t, options));
  }

  async waitFor(id: string, options: WaitOptions = {}): Promise<unknown> {
    assertOpen(this.closed, "q.waitFor()");
    assertOptionsObject("q.waitFor()", options);
    assertJobId(id);
    if (options.timeoutMs !== undefined) assertInteger(options.timeoutMs, "timeoutMs", 1);
    this.waiters ??= new Waiters(this.sql, this.t, this.log, this.pooler !== "transaction");
    return checkingSchema(this.schema, this.waiters.wait(id, options.timeoutMs));
  }

  async enqueueAndWait(queue: string, payload: unknown, options: EnqueueAndWaitOptions = {}): Promise<unknown> {
    assertOpen(this.closed, "q.enqueueAndWait()");
    assertOptionsObject("q.enqueueAndWait()", options);
    const { timeoutMs, ...enqueueOptions } = options;
    if (timeoutMs !== undefined) assertInteger(timeoutMs, "timeoutMs", 1);
    if ("tx" in enqueueOptions) {
      throw new ValidationError("INVALID_OPTION", "q.enqueueAndWait() cannot take tx: no worker sees the job before the transaction commits; enqueue in it, then q.waitFor() after the commit");
    }
    const { id } = await this.enqueue(queue, payload, enqueueOptions);
    return this.waitFor(id, { timeoutMs });
  }

  async cancel(id: string): Promise<boolean> {
    assertOpen(this.closed, "q.cancel()");
    assertJobId(id);
    return (await checkingSchema(this.schema, cancelJobs(this.sql, this.t, { ids: [id] }))).length > 0;
  }

  async cancelQueue(queue: string): Promise<number> {
    assertOpen(this.closed, "q.cancelQueue()");
    assertQueueName(queue);
    let total = 0;
    for (let n = CANCEL_BATCH; n === CANCEL_BATCH; total += n) {
      n = (await checkingSchema(this.schema, cancelJobs(this.sql, this.t, { queue }))).length;
    }
    return total;
  }

  async setQueue(queue: string, settings: QueueSettings): Promise<QueueConfig> {
    assertOpen(this.closed, "q.setQueue()");
    const prepared = prepareQueueSettings(queue, settings);
    const config = await checkingSchema(this.schema, setQueue(this.sql, this.t, prepared.queue, prepared.set));
    // Rows finished from now on land in the new retention's partitions: make them now, not at maintenance's next look.
    if (prepared.set.has("retention_ms")) await maintainHistory(this.sql, this.t);
    return config;
  }

  async pause(queue: string): Promise<void> {
    assertOpen(this.closed, "q.pause()");
    await this.setQueue(queue, { paused: true });
  }

  async resume(queue: string): Promise<void> {
    assertOpen(this.closed, "q.resume()");
    await this.setQueue(queue, { paused: false });
  }

  async queues(): Promise<QueueConfig[]> {
    assertOpen(this.closed, "q.queues()");
    return checkingSchema(this.schema, listQueues(this.sql, this.t));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unwatchQueues();
      await Promise.all([...this.running].map((w) => w.stop()));
      await this.waiters?.close();
      await this.sharedClosed;
      if (this.url) await this.sql.end({ timeout: 5 });
    })();
    return this.closing;
  }
}
