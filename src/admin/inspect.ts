// What `pgq inspect` and `q.stats()` show: per queue, jobs by state (src/job-state.ts), the age
// of the oldest ready job, the jobs that died in the last minute, and the jobs completed and
// failed in the last minute and hour (pgq.history), read in bounded time
// however large the tables are.
//
// Every count walks an index and stops after `exactUpTo` rows; a count that reaches the bound
// is replaced by the planner's estimate (EXPLAIN, which reads table statistics and no rows) and
// flagged as estimated. Each walk is written for one index: it spells out the index's predicate
// (a partial index serves a query only then) and orders by its columns, so that its plan is that
// index read in order and stopped by the limit; src/db/operator-read.ts rules out the scans that
// cannot stop, and test/inspect-plans.test.ts checks the plans at a million jobs. The queries are
// plain SQL rather than kysely: the skip scans below are recursive CTEs that read better as written.
import type { PendingQuery, Row as PgRow, Sql, TransactionSql } from "postgres";
import { asOperatorRead } from "../db/operator-read.js";
import { transaction } from "../db/transaction.js";
import { tables, type Tables } from "../db/tables.js";
import { skipScan } from "./skip-scan.js";
import { GROUP_WAITING, JOB_STATES, QUEUED, READY, RETRYING, RUNNING, SCHEDULED } from "../job-state.js";
import type { QueueStats, RateLimit } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";

export interface InspectOptions {
  /** Only this queue, and its running jobs one by one. */
  queue?: string;
  /** Counts up to this are exact; larger ones are estimates. Default 10000. */
  exactUpTo?: number;
  /** With `queue`: list at most this many of its running jobs. Default 50. */
  runningJobsUpTo?: number;
  /**
   * Count the jobs finished in the last minute and hour from pgq.history (default true). false
   * skips that walk, the costliest of a busy queue's, and reads those counts as 0: for callers
   * that chart throughput themselves (src/admin/throughput.ts), as the dashboard does.
   */
  finished?: boolean;
}

export type InspectedState = "ready" | "scheduled" | "running" | "retrying" | "dead" | "diedLastMinute" | "finished";

export interface QueueInspection extends QueueStats {
  /** Jobs that moved to dead_jobs in the last minute. */
  diedLastMinute: number;
  /** Paused (q.pause()): no worker claims from it. */
  paused: boolean;
  /** Its flow-control limits (q.setQueue()), null where none is set. */
  limits: QueueLimits;
  /** Jobs completed, and jobs that died (failed on their last attempt), in the last minute and hour, from pgq.history. */
  completedLastMinute: number;
  failedLastMinute: number;
  completedLastHour: number;
  failedLastHour: number;
  /** The counts above that are estimates rather than exact. */
  estimated: InspectedState[];
}

export interface QueueLimits {
  concurrency: number | null;
  keyConcurrency: number | null;
  rateLimit: RateLimit | null;
  keyRateLimit: RateLimit | null;
}

export interface Inspection {
  /** The database's time when the counts were taken. */
  at: Date;
  exactUpTo: number;
  queues: QueueInspection[];
  /** With `queue`: its running jobs, those whose leases end first, up to `runningJobsUpTo`. */
  runningJobs?: RunningJobs;
}

export interface RunningJobs {
  jobs: RunningJob[];
  /** More jobs were running than were listed. */
  more: boolean;
}

export interface RunningJob {
  id: string;
  /** The worker that holds it. */
  worker: string | null;
  /** Its first attempt's start. */
  startedAt: Date | null;
  /** The attempt running now, counting from 1. */
  attempt: number;
  maxAttempts: number;
  /** Its lease ends then unless renewed (lease mode) or the attempt ends. */
  lockedUntil: Date;
  /** The last ctx.progress() value, or null. */
  progress: unknown;
}

const DEFAULT_EXACT_UP_TO = 10_000;
const DEFAULT_RUNNING_JOBS_UP_TO = 50;
/** Distinct priorities walked per queue; past this, waiting counts become estimates. */
const MAX_PRIORITIES = 1000;

interface Row {
  queue: string;
  ready: number;
  /** Rows walked past now() in jobs_claim: retrying, or scheduled for later. */
  later: number;
  scheduled_later: number;
  retrying: number;
  /** Rows walked in jobs_group: group heads, and the jobs waiting behind them. */
  grouped: number;
  group_waiting: number;
  running: number;
  dead: number;
  died_last_minute: number;
  completed_minute: number;
  failed_minute: number;
  completed_hour: number;
  failed_hour: number;
  /** History rows read: the last hour's, newest first, up to the bound. */
  finished_read: number;
  /** Ms between now and the oldest history row read. */
  finished_span_ms: number | null;
  paused: boolean;
  limits: { concurrency: number | null; key_concurrency: number | null; rate_count: number | null; rate_per_ms: number | null;
            key_rate_count: number | null; key_rate_per_ms: number | null } | null;
  oldest_ready_age_ms: string | null;
  truncated: boolean;
  at: Date;
}

export async function inspectQueues(sql: Sql, schema: string, options: InspectOptions = {}): Promise<Inspection> {
  return transaction(sql, (tx) => inspectWithin(tx, tables(sql, schema), options), "read only");
}

/** inspectQueues() in the caller's transaction (the queue gauges' refresh, which writes too). */
export async function inspectWithin(tx: TransactionSql, t: Tables, options: InspectOptions = {}): Promise<Inspection> {
  const { queue, exactUpTo = DEFAULT_EXACT_UP_TO, runningJobsUpTo = DEFAULT_RUNNING_JOBS_UP_TO, finished = true } = options;
  if (queue !== undefined) assertQueueName(queue);
  assertInteger(exactUpTo, "exactUpTo", 1, 10_000_000);
  assertInteger(runningJobsUpTo, "runningJobsUpTo", 1, 10_000);
  const cap = exactUpTo + 1;
  return asOperatorRead(tx, async () => {
    const is = (state: string) => tx.unsafe(state);
    const rows = await tx<Row[]>`
      with recursive
      ${queue === undefined ? allQueues(tx, t) : tx`queues(queue) as (select ${queue}::text),`}
      -- The distinct priorities of each queue's queued jobs, one descent of jobs_claim (queue,
      -- priority, run_at, id) each: every walk below is then a range of that index that starts
      -- at its first row, where (queue, run_at) alone would walk past every other priority.
      priorities(queue, priority, depth) as (
        select q.queue, (select min(j.priority) from ${t.jobs} j where j.queue = q.queue and ${is(QUEUED)}), 1
        from queues q
        union all
        select p.queue,
               (select min(j.priority) from ${t.jobs} j where j.queue = p.queue and ${is(QUEUED)} and j.priority > p.priority),
               p.depth + 1
        from priorities p
        where p.priority is not null and p.depth < ${MAX_PRIORITIES}
      )
      select q.queue, now() as at,
        (select count(*) from (
           select from priorities p cross join lateral (
             select from ${t.jobs} j
             where j.queue = p.queue and j.priority = p.priority and ${is(READY)}
             order by j.run_at limit ${cap}) j
           where p.queue = q.queue and p.priority is not null
           limit ${cap}) c)::int as ready,
        later.n as later, later.scheduled as scheduled_later, later.retrying,
        grouped.n as grouped, grouped.waiting as group_waiting,
        (select round(extract(epoch from now() - min(o.run_at)) * 1000)::bigint
         from priorities p cross join lateral (
           select j.run_at from ${t.jobs} j
           where j.queue = p.queue and j.priority = p.priority and ${is(READY)}
           order by j.run_at limit 1) o
         where p.queue = q.queue and p.priority is not null) as oldest_ready_age_ms,
        -- Along jobs_leased, which holds the running jobs of every queue: as many as workers have slots.
        (select count(*) from (
           select from ${t.jobs} j where j.queue = q.queue and ${is(RUNNING)} order by j.locked_until limit ${cap}) c)::int as running,
        (select count(*) from (
           select from ${t.deadJobs} d where d.queue = q.queue order by d.queue, d.died_at limit ${cap}) c)::int as dead,
        (select count(*) from (
           select from ${t.deadJobs} d where d.queue = q.queue and d.died_at > now() - interval '1 minute'
           order by d.queue, d.died_at limit ${cap}) c)::int as died_last_minute,
        finished.completed_minute, finished.failed_minute, finished.completed_hour, finished.failed_hour,
        finished.n as finished_read, finished.span_ms as finished_span_ms,
        exists (select from ${t.queues} s where s.queue = q.queue and s.paused) as paused,
        (select json_build_object('concurrency', s.concurrency, 'key_concurrency', s.key_concurrency,
                                  'rate_count', s.rate_count, 'rate_per_ms', s.rate_per_ms,
                                  'key_rate_count', s.key_rate_count, 'key_rate_per_ms', s.key_rate_per_ms)
           from ${t.queues} s where s.queue = q.queue) as limits,
        exists (select from priorities p where p.queue = q.queue and p.depth = ${MAX_PRIORITIES} and p.priority is not null)
           as truncated
      from queues q
      -- The rest of jobs_claim, not due yet: each row walked is retrying or scheduled, and the
      -- bound is on rows walked, so a million of one cannot make counting the other unbounded.
      cross join lateral (
        select count(*)::int as n, (count(*) filter (where l.scheduled))::int as scheduled,
               (count(*) filter (where l.retrying))::int as retrying
        from (
          select j.scheduled, j.retrying
          from priorities p cross join lateral (
            select ${is(SCHEDULED)} as scheduled, ${is(RETRYING)} as retrying from ${t.jobs} j
            where j.queue = p.queue and j.priority = p.priority and ${is(QUEUED)} and j.run_at > now()
            order by j.run_at limit ${cap}) j
          where p.queue = q.queue and p.priority is not null
          limit ${cap}) l
      ) later
      -- Jobs waiting behind their group's head are in no index of their own: jobs_group holds
      -- them with the heads, so this walk too is bounded by rows walked.
      cross join lateral (
        select count(*)::int as n, (count(*) filter (where g.waiting))::int as waiting
        from (
          select ${is(GROUP_WAITING)} as waiting from ${t.jobs} j
          where j.queue = q.queue and j.group_key is not null
          order by j.queue, j.group_key, j.id limit ${cap}) g
      ) grouped
      cross join lateral (${finished ? finishedWalk(tx, t, cap) : nothingFinished(tx)}) finished
      order by q.queue`;
    const [queues, runningJobs] = await Promise.all([
      Promise.all(rows.map((row) => withEstimates(tx, t, row, cap))),
      queue === undefined ? undefined : listRunningJobs(tx, t, queue, runningJobsUpTo),
    ]);
    const at = rows[0]?.at ?? (await tx<{ now: Date }[]>`select now()`)[0]!.now;
    return { at, exactUpTo, queues, ...(runningJobs === undefined ? {} : { runningJobs }) };
  });
}

/**
 * The last hour of pgq.history, newest first along history_queue (merged across partitions,
 * read from the index alone), stopped at the bound: past it the hour is extrapolated from the
 * span the rows read cover.
 */
function finishedWalk(tx: TransactionSql, t: Tables, cap: number) {
  return tx`
    select count(*)::int as n,
           (count(*) filter (where h.state = 'completed' and h.finished_at > now() - interval '1 minute'))::int as completed_minute,
           (count(*) filter (where h.state = 'dead' and h.finished_at > now() - interval '1 minute'))::int as failed_minute,
           (count(*) filter (where h.state = 'completed'))::int as completed_hour,
           (count(*) filter (where h.state = 'dead'))::int as failed_hour,
           round(extract(epoch from now() - min(h.finished_at)) * 1000)::float8 as span_ms
    from (
      select h.state, h.finished_at from ${t.history} h
      where h.queue = q.queue and h.finished_at > now() - interval '1 hour'
      order by h.finished_at desc limit ${cap}) h`;
}

/** What finishedWalk() returns when it is skipped. */
function nothingFinished(tx: TransactionSql) {
  return tx`select 0 as n, 0 as completed_minute, 0 as failed_minute, 0 as completed_hour, 0 as failed_hour, null::float8 as span_ms`;
}

// The queues that have jobs, found by skip scans (src/admin/skip-scan.ts). Every group with live
// jobs has a head that is queued or running, but a queue is listed from jobs_group too, so that
// jobs stuck behind a head that is gone still show. Running jobs are few, so their queues come
// from jobs_leased directly.
function allQueues(tx: TransactionSql, t: Tables) {
  return tx`
    ${skipScan(tx, "queued_queues", t.jobs, tx.unsafe(QUEUED))},
    ${skipScan(tx, "grouped_queues", t.jobs, tx`j.group_key is not null`)},
    ${skipScan(tx, "dead_queues", t.deadJobs, tx`true`)},
    ${skipScan(tx, "finished_queues", t.history, tx`true`)},
    queues(queue) as (
      select queue from queued_queues where queue is not null
      union select queue from grouped_queues where queue is not null
      union select queue from dead_queues where queue is not null
      union select queue from finished_queues where queue is not null
      union select j.queue from ${t.jobs} j where ${tx.unsafe(RUNNING)}
    ),`;
}

/**
 * A queue's running jobs, along jobs_leased: it holds the running jobs of every queue, as many as
 * workers have slots, so the walk is short whatever the backlog, and stops after upTo + 1 rows of
 * this queue.
 */
async function listRunningJobs(tx: TransactionSql, t: Tables, queue: string, upTo: number): Promise<RunningJobs> {
  const jobs = await tx<RunningJob[]>`
    select j.id::text as id, j.locked_by as worker, j.started_at as "startedAt", j.attempts as attempt,
           j.max_attempts as "maxAttempts", j.locked_until as "lockedUntil", j.progress
    from ${t.jobs} j
    where j.queue = ${queue} and ${tx.unsafe(RUNNING)}
    order by j.locked_until limit ${upTo + 1}`;
  return { jobs: jobs.slice(0, upTo), more: jobs.length > upTo };
}

async function withEstimates(tx: TransactionSql, t: Tables, row: Row, cap: number): Promise<QueueInspection> {
  const estimated: InspectedState[] = [];
  const laterCapped = row.later >= cap || row.truncated;
  const count = async (state: InspectedState, exact: number, capped: boolean, where: PendingQuery<PgRow[]>) => {
    if (!capped) return exact;
    estimated.push(state);
    return Math.max(exact, await plannerEstimate(tx, where));
  };
  const q = row.queue;
  const jobs = (state: keyof typeof JOB_STATES) => tx`select from ${t.jobs} j where j.queue = ${q} and ${tx.unsafe(JOB_STATES[state])}`;
  const [ready, scheduled, retrying, running, dead, diedLastMinute] = await Promise.all([
    count("ready", row.ready, row.ready >= cap || row.truncated, jobs("ready")),
    count("scheduled", row.scheduled_later + row.group_waiting, laterCapped || row.grouped >= cap, jobs("scheduled")),
    count("retrying", row.retrying, laterCapped, jobs("retrying")),
    count("running", row.running, row.running >= cap, jobs("running")),
    count("dead", row.dead, row.dead >= cap, tx`select from ${t.deadJobs} where queue = ${q}`),
    count("diedLastMinute", row.died_last_minute, row.died_last_minute >= cap,
      tx`select from ${t.deadJobs} where queue = ${q} and died_at > now() - interval '1 minute'`),
  ]);
  return {
    queue: q,
    ready,
    scheduled,
    running,
    retrying,
    dead,
    oldestReadyAgeMs: row.oldest_ready_age_ms === null ? null : Number(row.oldest_ready_age_ms),
    diedLastMinute,
    paused: row.paused,
    limits: {
      concurrency: row.limits?.concurrency ?? null,
      keyConcurrency: row.limits?.key_concurrency ?? null,
      rateLimit: rateOf(row.limits?.rate_count, row.limits?.rate_per_ms),
      keyRateLimit: rateOf(row.limits?.key_rate_count, row.limits?.key_rate_per_ms),
    },
    ...finishedCounts(row, cap, estimated),
    estimated: (["ready", "scheduled", "running", "retrying", "dead", "diedLastMinute", "finished"] as const).filter((s) => estimated.includes(s)),
  };
}

/**
 * The last minute's and hour's counts. When the bound stopped the walk, the rows read cover the
 * most recent part of the hour only: each count is scaled up to the window by that span, on the
 * assumption that the rate held, and flagged as an estimate.
 */
function finishedCounts(row: Row, cap: number, estimated: InspectedState[]) {
  const counts = { completedLastMinute: row.completed_minute, failedLastMinute: row.failed_minute,
    completedLastHour: row.completed_hour, failedLastHour: row.failed_hour };
  if (row.finished_read < cap || row.finished_span_ms === null) return counts;
  estimated.push("finished");
  const span = Math.max(1, row.finished_span_ms);
  const scale = (n: number, windowMs: number) => (span >= windowMs ? n : Math.round((n * windowMs) / span));
  return {
    completedLastMinute: scale(counts.completedLastMinute, 60_000),
    failedLastMinute: scale(counts.failedLastMinute, 60_000),
    completedLastHour: scale(counts.completedLastHour, 3_600_000),
    failedLastHour: scale(counts.failedLastHour, 3_600_000),
  };
}

/** The planner's row estimate for a query, from table statistics: no rows are read. */
async function plannerEstimate(tx: TransactionSql, query: PendingQuery<PgRow[]>): Promise<number> {
  const [row] = await tx<{ "QUERY PLAN": [{ Plan: { "Plan Rows": number } }] }[]>`explain (format json) ${query}`;
  return Math.round(row?.["QUERY PLAN"][0].Plan["Plan Rows"] ?? 0);
}

function rateOf(count: number | null | undefined, perMs: number | null | undefined): RateLimit | null {
  return count == null || perMs == null ? null : { count, perMs };
}
