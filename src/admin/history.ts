// One job wherever it is (q.getJob(), `pgq job`), and the finished ones, a page at a time
// (`pgq history`, q.history(), the dashboard's list of finished jobs).
// A job is in exactly one of pgq.jobs (waiting or running), pgq.history (finished) and
// pgq.dead_jobs, but for a dead job, which is in both of the last two (src/sql/fail.ts), and a
// dead job sent back to the queue, whose earlier death stays in history: the live row wins, then
// the newest history row, then dead_jobs (a dead job of a queue that keeps no history).
import type { PendingQuery, Row as PgRow, Sql, TransactionSql } from "postgres";
import { operatorRead } from "../db/operator-read.js";
import type { Tables } from "../db/tables.js";
import { ValidationError } from "../errors.js";
import { FINAL_STATES, STATE_OF, type AnyJobState, type FinalState } from "../job-state.js";
import type { HistoryOptions, HistoryPage, JobInfo } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";
import { skipScan } from "./skip-scan.js";
import { decodeCursor, rowMatches, WALK_LIMIT, walkPage, type Walked, type WalkPage } from "./walk.js";

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
function prepareHistoryOptions(options: HistoryOptions) {
  const { queue, state, sinceMs = 3600_000, limit = 100, cursor } = options;
  if (queue !== undefined) assertQueueName(queue);
  if (state !== undefined && !FINAL_STATES.includes(state)) {
    throw new ValidationError("INVALID_OPTION", `state must be one of ${FINAL_STATES.join(", ")} (got ${JSON.stringify(state)})`);
  }
  assertInteger(sinceMs, "sinceMs", 1);
  assertInteger(limit, "limit", 1, MAX_HISTORY_LIMIT);
  if (cursor !== undefined && typeof cursor !== "string") throw new ValidationError("INVALID_OPTION", "cursor is the `next` of a page q.history() gave");
  return { queue, state, sinceMs, limit, cursor };
}

/**
 * Finished jobs, newest first: up to `limit` of them, and the cursor of the next page. Each
 * statement walks a bounded stretch (walkHistory()); a page whose filter is rare takes as many
 * walks as it needs to fill, back to `sinceMs` ago.
 */
export async function listHistory(sql: Sql, t: Tables, options: HistoryOptions): Promise<HistoryPage> {
  const { limit, cursor, ...filter } = prepareHistoryOptions(options);
  return operatorRead(sql, async (tx) => {
    let page = await walkHistory(tx, t, { ...filter, cursor }, limit);
    const hits = [...page.hits];
    while (page.walkStopped) {
      page = await walkHistory(tx, t, { ...filter, cursor: page.next! }, limit - hits.length);
      hits.push(...page.hits);
    }
    const rows = await foundRows<JobRow>(tx, t, hits, tx`
      h.id, h.queue, h.state, h.payload, h.result, h.progress, h.priority, h.attempts, h.max_attempts,
      h.group_key, h.last_error, h.errors, h.created_at, null as run_at, h.started_at, h.finished_at,
      null as expires_at, h.worker, null as locked_until`);
    return Object.assign(rows.map(jobInfo), { next: page.next });
  });
}

export interface HistoryFilter {
  queue?: string | undefined;
  /** One final state; any when left out. */
  state?: FinalState | undefined;
  id?: string | undefined;
  /** As the job lists take it (src/admin/walk.ts). */
  payload?: string | undefined;
  /** Only jobs finished in the last this many ms; all that history keeps when left out. */
  sinceMs?: number | undefined;
  cursor?: string | undefined;
}

/**
 * The walks of pgq.history, newest finished first, each along an index history already has:
 *
 *   history-id     history_id: one job (a row for each time it finished: it died, was retried, completed)
 *   history-queue  history_queue (queue, finished_at): one queue
 *   history        history_queue once per queue that has history, merged in finished_at order
 *
 * The merge is PostgreSQL's Merge Append over the queues' walks, which it stops at the limit: a
 * page reads about WALK_LIMIT entries plus a descent per queue and partition, and needs no index
 * on finished_at alone, which every completion would pay for. Rows finished by one statement
 * share its finished_at; the id orders them (an incremental sort of each run of equal times), and
 * (finished_at, id) is unique, since a job finishes at most once in a statement.
 */
type HistoryWalk = "history" | "history-queue" | "history-id";

/** One page of history, walked as src/admin/walk.ts says: the dashboard's, and each step of q.history()'s. */
export async function walkHistory(tx: TransactionSql, t: Tables, filter: HistoryFilter, limit: number): Promise<WalkPage> {
  const walk: HistoryWalk = filter.id !== undefined ? "history-id" : filter.queue !== undefined ? "history-queue" : "history";
  const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor, walk, 2);
  const hit = rowMatches(tx, "h", filter, filter.state === undefined ? [] : [tx`h.state = ${filter.state}`]);
  // Newest first from the cursor on. The cursor's time bounds the index scan; the pair, the rows at that time.
  const leg = (start: PendingQuery<PgRow[]>) => tx`
    select h.id, h.finished_at, ${hit} as hit from ${t.history} h
    where ${start}
      ${filter.sinceMs === undefined ? tx`` : tx`and h.finished_at > now() - ${filter.sinceMs}::double precision * interval '1 millisecond'`}
      ${after ? tx`and h.finished_at <= ${after[0]!}::text::timestamptz and (h.finished_at, h.id) < (${after[0]!}::text::timestamptz, ${after[1]!}::bigint)` : tx``}
    order by h.finished_at desc`;
  let legs: PendingQuery<PgRow[]>;
  if (walk === "history") {
    const queues = await queuesWithHistory(tx, t);
    if (queues.length === 0) return { hits: [], next: null, walked: 0, walkStopped: false };
    legs = queues.map((queue) => tx`(${leg(tx`h.queue = ${queue}`)})`).reduce((a, b) => tx`${a} union all ${b}`);
  } else {
    legs = walk === "history-id" ? leg(tx`h.id = ${filter.id!}::bigint`) : leg(tx`h.queue = ${filter.queue!}`);
  }
  return walkPage(tx, tx`
    select u.id, u.finished_at::text as k1, null::text as k2, u.hit from (${legs}) u
    order by u.finished_at desc, u.id desc limit ${WALK_LIMIT}`, limit, walk, (r) => [r.k1, r.id]);
}

async function queuesWithHistory(tx: TransactionSql, t: Tables): Promise<string[]> {
  const rows = await tx<{ queue: string }[]>`
    with recursive ${skipScan(tx, "found", t.history, tx`true`)}
    select queue from found where queue is not null`;
  return rows.map((r) => r.queue);
}

/** The history rows a walk found, in its order, as `columns` over h. */
export async function foundRows<T extends object>(tx: TransactionSql, t: Tables, hits: Walked[], columns: PendingQuery<PgRow[]>): Promise<T[]> {
  if (hits.length === 0) return [];
  return tx<T[]>`
    select ${columns}
    from unnest(${hits.map((h) => h.id)}::bigint[], ${hits.map((h) => h.k1!)}::text[]) with ordinality as p(id, finished_at, n)
    join ${t.history} h on h.id = p.id and h.finished_at = p.finished_at::timestamptz
    order by p.n`;
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
