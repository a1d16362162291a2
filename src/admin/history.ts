// One job wherever it is (q.getJob(), `pgq job`), and the recently finished ones (`pgq history`).
// A job is in exactly one of pgq.jobs (waiting or running), pgq.history (finished) and
// pgq.dead_jobs, but for a dead job, which is in both of the last two (src/sql/fail.ts), and a
// dead job sent back to the queue, whose earlier death stays in history: the live row wins, then
// the newest history row, then dead_jobs (a dead job of a queue that keeps no history).
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";
import { ValidationError } from "../errors.js";
import { FINAL_STATES, STATE_OF, type AnyJobState } from "../job-state.js";
import type { HistoryOptions, JobInfo } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";

interface JobRow {
  id: string;
  queue: string;
  state: AnyJobState;
  payload: unknown;
  result: unknown;
  progress: unknown;
  priority: number;
  attempts: number;
  max_attempts: number;
  group_key: string | null;
  last_error: string | null;
  errors: unknown[];
  created_at: Date;
  run_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  expires_at: Date | null;
  worker: string | null;
  locked_until: Date | null;
}

const MAX_HISTORY_LIMIT = 10_000;

export function assertJobId(id: unknown): asserts id is string {
  if (typeof id !== "string" || !/^[1-9]\d{0,18}$/.test(id) || BigInt(id) > 2n ** 63n - 1n) {
    throw new ValidationError("INVALID_OPTION", `a job id is a positive integer, as a string such as "1042" (got ${JSON.stringify(id) ?? String(id)})`);
  }
}

export async function getJob(sql: Sql, t: Tables, id: string): Promise<JobInfo | null> {
  const [row] = await sql<JobRow[]>`
    select * from (
      select 1 as rank, j.id, j.queue, ${sql.unsafe(STATE_OF)} as state, j.payload, null::jsonb as result, j.progress,
             j.priority, j.attempts, j.max_attempts, j.group_key, j.last_error, j.errors, j.created_at, j.run_at,
             j.started_at, null::timestamptz as finished_at, j.expires_at, j.locked_by as worker, j.locked_until
      from ${t.jobs} j where j.id = ${id}
      union all
      (select 2, h.id, h.queue, h.state, h.payload, h.result, h.progress, h.priority, h.attempts, h.max_attempts,
              h.group_key, h.last_error, h.errors, h.created_at, null, h.started_at, h.finished_at, null, h.worker, null
       from ${t.history} h where h.id = ${id} order by h.finished_at desc limit 1)
      union all
      select 3, d.id, d.queue, case d.reason when 'expired' then 'expired' else 'dead' end, d.payload, null, null,
             d.priority, d.attempts, d.max_attempts, d.group_key, d.last_error, d.errors, d.created_at, null,
             null, d.died_at, null, null, null
      from ${t.deadJobs} d where d.id = ${id}
    ) found
    order by rank limit 1`;
  return row ? jobInfo(row) : null;
}

/** Checks `pgq history`'s and q.history()'s filters before any SQL. */
function prepareHistoryOptions(options: HistoryOptions): Required<Omit<HistoryOptions, "queue" | "state">> & HistoryOptions {
  const { queue, state, sinceMs = 3600_000, limit = 100 } = options;
  if (queue !== undefined) assertQueueName(queue);
  if (state !== undefined && !FINAL_STATES.includes(state)) {
    throw new ValidationError("INVALID_OPTION", `state must be one of ${FINAL_STATES.join(", ")} (got ${JSON.stringify(state)})`);
  }
  assertInteger(sinceMs, "sinceMs", 1);
  assertInteger(limit, "limit", 1, MAX_HISTORY_LIMIT);
  return { queue, state, sinceMs, limit };
}

/**
 * Finished jobs, newest first. With a queue, along history_queue in each partition (merged in
 * order, stopped at the limit); across queues, the BRIN index on finished_at finds the pages of
 * the window, which are then sorted.
 */
export async function listHistory(sql: Sql, t: Tables, options: HistoryOptions): Promise<JobInfo[]> {
  const { queue, state, sinceMs, limit } = prepareHistoryOptions(options);
  const rows = await sql<JobRow[]>`
    select h.id, h.queue, h.state, h.payload, h.result, h.progress, h.priority, h.attempts, h.max_attempts,
           h.group_key, h.last_error, h.errors, h.created_at, null as run_at, h.started_at, h.finished_at,
           null as expires_at, h.worker, null as locked_until
    from ${t.history} h
    where h.finished_at > now() - ${sinceMs}::double precision * interval '1 millisecond'
      ${queue === undefined ? sql`` : sql`and h.queue = ${queue}`}
      ${state === undefined ? sql`` : sql`and h.state = ${state}`}
    order by h.finished_at desc
    limit ${limit}`;
  return rows.map(jobInfo);
}

function jobInfo(r: JobRow): JobInfo {
  return {
    id: r.id,
    queue: r.queue,
    state: r.state,
    payload: r.payload,
    result: r.result,
    progress: r.progress,
    priority: r.priority,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    groupKey: r.group_key,
    lastError: r.last_error,
    errors: r.errors,
    createdAt: r.created_at,
    runAt: r.run_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    expiresAt: r.expires_at,
    worker: r.worker,
    lockedUntil: r.locked_until,
  };
}
