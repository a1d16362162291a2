// What `pgq inspect` shows: per queue, jobs by state, the age of the oldest ready job, and the
// jobs that died in the last minute, read in bounded time however large the tables are.
//
// Every count walks an index and stops after `exactUpTo` rows; a count that reaches the bound
// is replaced by the planner's estimate (EXPLAIN, which reads table statistics and no rows) and
// flagged as estimated. The queries are plain SQL rather than kysely: the skip scans below are
// recursive CTEs that read better as written.
import type { PendingQuery, Row as PgRow, Sql } from "postgres";
import { tables, type Tables } from "../db/tables.js";
import type { QueueStats } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";

export interface InspectOptions {
  /** Only this queue. */
  queue?: string;
  /** Counts up to this are exact; larger ones are estimates. Default 10000. */
  exactUpTo?: number;
}

export type InspectedState = "ready" | "scheduled" | "running" | "retrying" | "dead" | "diedLastMinute";

export interface QueueInspection extends QueueStats {
  /** Jobs that moved to dead_jobs in the last minute. */
  diedLastMinute: number;
  /**
   * Always null: a finished job leaves no row behind, so the schema cannot tell how many
   * completed, nor how many attempts failed and were retried. `pgq work` counts them itself.
   */
  completedLastMinute: null;
  failedLastMinute: null;
  /** The counts above that are estimates rather than exact. */
  estimated: InspectedState[];
}

export interface Inspection {
  /** The database's time when the counts were taken. */
  at: Date;
  exactUpTo: number;
  queues: QueueInspection[];
}

const DEFAULT_EXACT_UP_TO = 10_000;
/** Distinct priorities walked per queue; past this, waiting counts become estimates. */
const MAX_PRIORITIES = 1000;

interface Row {
  queue: string;
  ready: number;
  scheduled: number;
  retrying: number;
  later: number;
  running: number;
  dead: number;
  died_last_minute: number;
  oldest_ready_age_ms: string | null;
  truncated: boolean;
  at: Date;
}

export async function inspectQueues(sql: Sql, schema: string, options: InspectOptions = {}): Promise<Inspection> {
  const { queue, exactUpTo = DEFAULT_EXACT_UP_TO } = options;
  if (queue !== undefined) assertQueueName(queue);
  assertInteger(exactUpTo, "exactUpTo", 1, 10_000_000);
  const t = tables(sql, schema);
  const cap = exactUpTo + 1;
  const rows = await sql<Row[]>`
    with recursive
    ${queue === undefined ? allQueues(sql, t) : sql`queues as (select ${queue}::text as queue),`}
    -- The distinct priorities of each queue's waiting jobs, one index descent each along
    -- jobs_claim (queue, priority, run_at, id): every count below is then a tight range scan of
    -- that index, where (queue, run_at) alone would walk past every job of other priorities.
    priorities(queue, priority, depth) as (
      select q.queue, (select min(j.priority) from ${t.jobs} j where j.queue = q.queue and j.locked_until is null), 1
      from queues q
      union all
      select p.queue,
             (select min(j.priority) from ${t.jobs} j
              where j.queue = p.queue and j.locked_until is null and j.priority > p.priority),
             p.depth + 1
      from priorities p
      where p.priority is not null and p.depth < ${MAX_PRIORITIES}
    )
    select q.queue, now() as at,
      (select count(*) from (
         select from priorities p cross join lateral (
           select from ${t.jobs} j
           where j.queue = p.queue and j.locked_until is null and j.priority = p.priority and j.run_at <= now()
           limit ${cap}) j
         where p.queue = q.queue and p.priority is not null
         limit ${cap}) c)::int as ready,
      later.scheduled, later.retrying, later.n as later,
      (select round(extract(epoch from now() - min(o.run_at)) * 1000)::bigint
       from priorities p cross join lateral (
         select j.run_at from ${t.jobs} j
         where j.queue = p.queue and j.locked_until is null and j.priority = p.priority
         order by j.run_at limit 1) o
       where p.queue = q.queue and p.priority is not null and o.run_at <= now()) as oldest_ready_age_ms,
      -- Leased jobs, along jobs_leased: there are as many as workers have slots.
      (select count(*) from (
         select from ${t.jobs} j where j.locked_until is not null and j.queue = q.queue limit ${cap}) c)::int as running,
      -- The order by keeps these on dead_jobs_queue: planned for any queue, a limit tempts the
      -- planner into a sequential scan that reads the whole table for a queue with no dead jobs.
      (select count(*) from (
         select from ${t.deadJobs} d where d.queue = q.queue order by d.queue, d.died_at limit ${cap}) c)::int as dead,
      (select count(*) from (
         select from ${t.deadJobs} d where d.queue = q.queue and d.died_at > now() - interval '1 minute'
         order by d.queue, d.died_at limit ${cap}) c)::int as died_last_minute,
      exists (select from priorities p where p.queue = q.queue and p.depth = ${MAX_PRIORITIES} and p.priority is not null)
         as truncated
    from queues q
    cross join lateral (
      select count(*)::int as n, (count(*) filter (where not l.retry))::int as scheduled,
             (count(*) filter (where l.retry))::int as retrying
      from (
        select j.attempts > 0 as retry
        from priorities p cross join lateral (
          select j.attempts from ${t.jobs} j
          where j.queue = p.queue and j.locked_until is null and j.priority = p.priority and j.run_at > now()
          limit ${cap}) j
        where p.queue = q.queue and p.priority is not null
        limit ${cap}) l
    ) later
    order by q.queue`;
  const queues = await Promise.all(rows.map((row) => withEstimates(sql, t, row, cap)));
  return { at: rows[0]?.at ?? (await sql<{ now: Date }[]>`select now()`)[0]!.now, exactUpTo, queues };
}

// The queues that have jobs, found by skip scans: one index descent per queue along
// jobs_claim and dead_jobs_queue, instead of reading every row to group them. Running jobs
// are few, so their queues come from jobs_leased directly.
function allQueues(sql: Sql, t: Tables) {
  return sql`
    waiting_queues(queue) as (
      (select queue from ${t.jobs} where locked_until is null order by queue limit 1)
      union all
      select (select j.queue from ${t.jobs} j where j.locked_until is null and j.queue > w.queue order by j.queue limit 1)
      from waiting_queues w where w.queue is not null
    ),
    dead_queues(queue) as (
      (select queue from ${t.deadJobs} order by queue limit 1)
      union all
      select (select d.queue from ${t.deadJobs} d where d.queue > w.queue order by d.queue limit 1)
      from dead_queues w where w.queue is not null
    ),
    queues as (
      select queue from waiting_queues where queue is not null
      union select queue from dead_queues where queue is not null
      union select queue from ${t.jobs} where locked_until is not null
    ),`;
}

async function withEstimates(sql: Sql, t: Tables, row: Row, cap: number): Promise<QueueInspection> {
  const estimated: InspectedState[] = [];
  const waitingTruncated = row.truncated;
  const laterCapped = row.later >= cap || waitingTruncated;
  const count = async (state: InspectedState, exact: number, capped: boolean, where: PendingQuery<PgRow[]>) => {
    if (!capped) return exact;
    estimated.push(state);
    return Math.max(exact, await plannerEstimate(sql, where));
  };
  const q = row.queue;
  const [ready, scheduled, retrying, running, dead, diedLastMinute] = await Promise.all([
    count("ready", row.ready, row.ready >= cap || waitingTruncated,
      sql`select from ${t.jobs} where queue = ${q} and locked_until is null and run_at <= now()`),
    count("scheduled", row.scheduled, laterCapped,
      sql`select from ${t.jobs} where queue = ${q} and locked_until is null and run_at > now() and attempts = 0`),
    count("retrying", row.retrying, laterCapped,
      sql`select from ${t.jobs} where queue = ${q} and locked_until is null and run_at > now() and attempts > 0`),
    count("running", row.running, row.running >= cap, sql`select from ${t.jobs} where queue = ${q} and locked_until is not null`),
    count("dead", row.dead, row.dead >= cap, sql`select from ${t.deadJobs} where queue = ${q}`),
    count("diedLastMinute", row.died_last_minute, row.died_last_minute >= cap,
      sql`select from ${t.deadJobs} where queue = ${q} and died_at > now() - interval '1 minute'`),
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
    completedLastMinute: null,
    failedLastMinute: null,
    estimated: (["ready", "scheduled", "running", "retrying", "dead", "diedLastMinute"] as const).filter((s) => estimated.includes(s)),
  };
}

/** The planner's row estimate for a query, from table statistics: no rows are read. */
async function plannerEstimate(sql: Sql, query: PendingQuery<PgRow[]>): Promise<number> {
  const [row] = await sql<{ "QUERY PLAN": [{ Plan: { "Plan Rows": number } }] }[]>`explain (format json) ${query}`;
  return Math.round(row?.["QUERY PLAN"][0].Plan["Plan Rows"] ?? 0);
}
