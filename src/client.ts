// connect(): the Queue object behind pgq's public API.
import { pino, type Logger } from "pino";
import type { Sql } from "postgres";
import { assertReachable, openConnection, openPool, poolerOptions, type ConnectionSource } from "./db/connections.js";
import { listDeadJobs, purgeDeadJobs, retryDeadJobs, type DeadJob, type DeadJobFilter, type ListDeadJobsOptions, type PurgeDeadJobsOptions } from "./admin/dead-jobs.js";
import { prepareEnqueue } from "./enqueue.js";
import { insertJobs } from "./sql/insert-jobs.js";
import { ValidationError } from "./errors.js";
import { Listener } from "./worker/listener.js";
import { migrate } from "./admin/migrate.js";
import { assertSchemaName, DEFAULT_SCHEMA, readyChannel } from "./db/schema.js";
import { inspectQueues, type Inspection, type InspectOptions } from "./admin/inspect.js";
import { defineSchedule, listSchedules, prepareSchedule, removeSchedule } from "./admin/schedules.js";
import { poolSizeWarning } from "./db/pool-size.js";
import { queueStats } from "./admin/stats.js";
import { tables, type Tables } from "./db/tables.js";
import { listSubscriptions, publish, subscribe, unsubscribe } from "./admin/topics.js";
import type {
  ConnectOptions, EnqueueOptions, Pooler, PublishOptions, Schedule, ScheduleOptions, Stats, Subscription, WorkOptions,
} from "./types.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, assertInteger } from "./validate.js";
import { PgqWorker, workerSettings, type Handlers } from "./worker/worker.js";

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
  /** Stops this client's workers gracefully, then closes the pool pgq opened. */
  close(): Promise<void>;
}

export async function connect(options: ConnectOptions = {}): Promise<Queue> {
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
  private readonly workers = new Set<PgqWorker>();

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
  }

  migrate(): Promise<string[]> {
    return migrate(this.sql, this.schema);
  }

  async enqueue(queue: string, payload: unknown, options: EnqueueOptions = {}): Promise<{ id: string }> {
    const [id] = await this.enqueueMany(queue, [payload], options);
    return { id: id! };
  }

  async enqueueMany(queue: string, payloads: unknown[], options: EnqueueOptions = {}): Promise<string[]> {
    if (!Array.isArray(payloads)) throw new ValidationError("INVALID_PAYLOAD", "enqueueMany needs an array of payloads");
    const prepared = prepareEnqueue(queue, payloads, options, this.maxPayloadBytes);
    return insertJobs(options.tx ?? this.sql, this.t, prepared.queue, prepared.texts, prepared.settings);
  }

  work(queueOrQueues: string | string[], handler: Handlers, options: WorkOptions = {}): PgqWorker {
    const pooled = this.pooler === "transaction";
    if (pooled && options.listen === true) {
      throw new ValidationError("INVALID_OPTION", 'listen: true cannot work with pooler: "transaction" (LISTEN needs a session of its own): connect without the pooler for it');
    }
    const settings = workerSettings(queueOrQueues, handler, pooled ? { ...options, listen: false } : options);
    const log = this.log;
    // Behind a pooler, slots connect with the pool's options, which turn prepared statements off.
    const connection = pooled || !this.url ? (this.sql.options as unknown as ConnectionSource) : this.url;
    // The worker's statements run on a pool of its own, opened like the slots' connections: they
    // never wait behind the application's use of q.sql, and a pool that stops answering, or whose
    // sessions were opened read-only, can be replaced. Lease-mode handlers share it as ctx.sql: a
    // connection for each job, even inside ctx.sql.begin(), and two for the worker.
    const reopenPool = () => openConnection(connection, log, { max: settings.mode === "lease" ? settings.concurrency + 2 : 3, ...poolerOptions(this.pooler) });
    const sql = reopenPool();
    if (!this.url) {
      const poolMax = this.sql.options.max;
      const warning = poolSizeWarning(poolMax, settings.concurrency);
      if (warning) log.warn({ poolMax, concurrency: settings.concurrency }, warning);
    }
    const listener = settings.listen
      ? new Listener(connection, readyChannel(this.schema), log)
      : undefined;
    const worker = new PgqWorker(settings, handler, { sql, connection, reopenPool, listener, pooled, tables: tables(sql, this.schema), log });
    this.workers.add(worker);
    void worker.ready.then(undefined, () => undefined);
    return worker;
  }

  stats(): Promise<Stats> {
    return queueStats(this.sql, this.schema);
  }

  inspect(options?: InspectOptions): Promise<Inspection> {
    return inspectQueues(this.sql, this.schema, options);
  }

  readonly deadJobs = {
    list: (options?: ListDeadJobsOptions) => listDeadJobs(this.sql, this.schema, options),
    retry: (filter?: DeadJobFilter) => retryDeadJobs(this.sql, this.schema, filter),
    purge: (options?: PurgeDeadJobsOptions) => purgeDeadJobs(this.sql, this.schema, options),
  };

  async schedule(name: string, cron: string, queue: string, payload: unknown = null, options: ScheduleOptions = {}): Promise<void> {
    await defineSchedule(this.sql, this.t, prepareSchedule(name, cron, queue, payload, options, this.maxPayloadBytes));
  }

  unschedule(name: string): Promise<boolean> {
    return removeSchedule(this.sql, this.t, name);
  }

  schedules(): Promise<Schedule[]> {
    return listSchedules(this.sql, this.t);
  }

  subscribe(queue: string, pattern: string): Promise<void> {
    return subscribe(this.sql, this.t, queue, pattern);
  }

  unsubscribe(queue: string, pattern: string): Promise<boolean> {
    return unsubscribe(this.sql, this.t, queue, pattern);
  }

  subscriptions(): Promise<Subscription[]> {
    return listSubscriptions(this.sql, this.t);
  }

  publish(topic: string, payload: unknown, options: PublishOptions = {}): Promise<string[]> {
    return publish(options.tx ?? this.sql, this.t, this.log, topic, payload, options, this.maxPayloadBytes);
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
    if (this.url) await this.sql.end({ timeout: 5 });
  }
}
