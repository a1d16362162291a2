// Browsing jobs one page at a time, live (pgq.jobs), dead (pgq.dead_jobs) or finished
// (pgq.history), filtered by queue, state, id and payload, and one job in full wherever it is
// (q.getJob()): what the dashboard's job pages read.
//
// Every page walks a bounded stretch of one index (src/admin/walk.ts). The walks:
//
//   dead                 dead_jobs_died_at or dead_jobs_queue, newest first
//   running              jobs_leased, in lease-expiry order (as many rows as workers have slots)
//   ready, retrying      jobs_claim for one queue, in the order workers claim them
//   finished states      pgq.history, newest finished first (walkHistory(), src/admin/history.ts)
//   anything else        the primary key, newest first
//
// Reads run through operatorRead(), which rules out the scans that cannot stop at a limit.
import type { PendingQuery, Row as PgRow, TransactionSql } from "postgres";
import type { Sql } from "postgres";
import { operatorRead } from "../db/operator-read.js";
import { tables, type Tables } from "../db/tables.js";
import type { ErrorDetails } from "../error-record.js";
import type { JobInfo } from "../types.js";
import { assertJobId, foundRows, getJob, walkHistory } from "./history.js";
import { ValidationError } from "../errors.js";
import { JOB_STATES, QUEUED, RUNNING, STATE_OF, type AnyJobState, type JobState } from "../job-state.js";
import { assertInteger, assertQueueName } from "../validate.js";
import { decodeCursor, rowMatches, WALK_LIMIT, walkPage, type Walked } from "./walk.js";

/** Finished jobs as pgq.history keeps them: one final state, or "finished" for any (jobs that died too). */
export type FinishedListing = "finished" | "completed" | "cancelled" | "expired";
/** What a list shows: live jobs in one state, dead jobs (pgq.dead_jobs, where they can be retried), or finished ones. */
export type ListedState = JobState | "dead" | FinishedListing;
export const FINISHED_LISTINGS: readonly FinishedListing[] = ["finished", "completed", "cancelled", "expired"];
export const LISTED_STATES: readonly ListedState[] = ["ready", "scheduled", "running", "retrying", "dead", ...FINISHED_LISTINGS];

export interface JobListFilter {
  queue?: string;
  /** Live jobs in any state when left out. */
  state?: ListedState;
  id?: string;
  /** JSON (an object or array the payload contains, as jsonb's @>), or text the payload's JSON contains. */
  payload?: string;
  /** Where the previous page stopped (JobPage.next). */
  cursor?: string;
  /** Default 50. */
  limit?: number;
}

export interface JobSummary {
  id: string;
  queue: string;
  state: AnyJobState;
  /** The payload's JSON, cut to PREVIEW_CHARS. */
  payloadPreview: string;
  priority: number;
  attempts: number;
  maxAttempts: number;
  /** When it may run (live), when it died (dead), or when it finished. */
  at: Date;
  lockedBy: string | null;
  lastError: string | null;
}

export interface JobPage {
  jobs: JobSummary[];
  /** The cursor of the next page; null at the end. */
  next: string | null;
  /** Rows this page walked: WALK_LIMIT when the walk stopped before the page filled. */
  walked: number;
  /** The walk stopped at WALK_LIMIT rows with the page not full: there may be more further on. */
  walkStopped: boolean;
}

export interface JobErrorEntry {
  attempt: number;
  at: string;
  worker: string | null;
  error: string;
  details?: ErrorDetails;
}

/** What a job's page shows: q.getJob()'s answer, and what only the live or dead row keeps. */
export interface JobDetail extends JobInfo {
  dedupeKey: string | null;
  /** Its row is in pgq.dead_jobs, where it can be retried or deleted (history keeps its death even then). */
  inDeadJobs: boolean;
}

const PREVIEW_CHARS = 160;
const BIGINT_ID = /^[1-9][0-9]{0,18}$/;

type Walk = "dead" | "running" | "claim" | "id";

export async function listJobs(sql: Sql, schema: string, filter: JobListFilter = {}): Promise<JobPage> {
  const { queue, state, id, payload, cursor, limit = 50 } = filter;
  if (queue !== undefined) assertQueueName(queue);
  if (state !== undefined && !LISTED_STATES.includes(state)) {
    throw new ValidationError("INVALID_OPTION", `state must be one of ${LISTED_STATES.join(", ")}`);
  }
  if (id !== undefined && !BIGINT_ID.test(id)) throw new ValidationError("INVALID_OPTION", "a job id is a positive integer");
  assertInteger(limit, "limit", 1, 500);
  const t = tables(sql, schema);
  if (isFinished(state)) {
    return operatorRead(sql, async (tx) => {
      const page = await walkHistory(tx, t, { queue, state: state === "finished" ? undefined : state, id, payload, cursor }, limit);
      return { jobs: await finishedSummaries(tx, t, page.hits), next: page.next, walked: page.walked, walkStopped: page.walkStopped };
    });
  }
  const walk: Walk = state === "dead" ? "dead" : state === "running" ? "running" : (state === "ready" || state === "retrying") && queue !== undefined ? "claim" : "id";
  const keyLength = walk === "id" ? 1 : walk === "claim" ? 3 : 2;
  const after = cursor === undefined ? undefined : decodeCursor(cursor, walk, keyLength);

  return operatorRead(sql, async (tx) => {
    const alias = walk === "dead" ? "d" : "j";
    const hit = rowMatches(tx, alias, { queue, id, payload }, state === undefined || state === "dead" ? [] : [tx`(${tx.unsafe(JOB_STATES[state])})`]);
    const page = await walkPage(tx, walkQuery(tx, t, walk, queue, id, after, hit), limit, walk,
      (r) => (walk === "id" ? [r.id] : walk === "claim" ? [r.k1, r.k2, r.id] : [r.k1, r.id]));
    const jobs = await summaries(tx, t, walk === "dead", page.hits.map((r) => r.id));
    return { jobs, next: page.next, walked: page.walked, walkStopped: page.walkStopped };
  });
}

function isFinished(state: ListedState | undefined): state is FinishedListing {
  return (FINISHED_LISTINGS as readonly (ListedState | undefined)[]).includes(state);
}

/**
 * The rows one page walks, in the walk's index order: the id, the sort key, and whether the
 * filter holds. Cursor timestamps go in as text: as a timestamptz parameter, postgres.js would
 * send a JavaScript Date, cut to milliseconds, and the walk would resume before its place.
 */
function walkQuery(tx: TransactionSql, t: Tables, walk: Walk, queue: string | undefined, id: string | undefined,
  after: string[] | undefined, hit: PendingQuery<PgRow[]>) {
  const inQueue = (alias: string) => (queue === undefined ? tx`` : tx`and ${tx(alias)}.queue = ${queue}`);
  const byId = (alias: string) => (id === undefined ? tx`` : tx`and ${tx(alias)}.id = ${id}::bigint`);
  switch (walk) {
    case "dead":
      return tx`
        select d.id, d.died_at::text as k1, null::text as k2, ${hit} as hit from ${t.deadJobs} d
        where true ${inQueue("d")} ${byId("d")}
          ${after ? tx`and (d.died_at, d.id) < (${after[0]!}::text::timestamptz, ${after[1]!}::bigint)` : tx``}
        order by d.died_at desc, d.id desc limit ${WALK_LIMIT}`;
    case "running":
      return tx`
        select j.id, j.locked_until::text as k1, null::text as k2, ${hit} as hit from ${t.jobs} j
        where ${tx.unsafe(RUNNING)} ${inQueue("j")} ${byId("j")}
          ${after ? tx`and (j.locked_until, j.id) > (${after[0]!}::text::timestamptz, ${after[1]!}::bigint)` : tx``}
        order by j.locked_until, j.id limit ${WALK_LIMIT}`;
    case "claim":
      return tx`
        select j.id, j.priority::text as k1, j.run_at::text as k2, ${hit} as hit from ${t.jobs} j
        where j.queue = ${queue!} and ${tx.unsafe(QUEUED)} ${byId("j")}
          ${after ? tx`and (j.priority, j.run_at, j.id) > (${after[0]!}::int, ${after[1]!}::text::timestamptz, ${after[2]!}::bigint)` : tx``}
        order by j.priority, j.run_at, j.id limit ${WALK_LIMIT}`;
    case "id":
      return tx`
        select j.id, null::text as k1, null::text as k2, ${hit} as hit from ${t.jobs} j
        where true ${byId("j")} ${after ? tx`and j.id < ${after[0]!}::bigint` : tx``}
        order by j.id desc limit ${WALK_LIMIT}`;
  }
}

async function summaries(tx: TransactionSql, t: Tables, dead: boolean, ids: string[]): Promise<JobSummary[]> {
  if (ids.length === 0) return [];
  const rows = dead
    ? await tx<SummaryRow[]>`
        select d.id::text, d.queue, 'dead' as state, left(d.payload::text, ${PREVIEW_CHARS}) as preview, d.priority,
               d.attempts, d.max_attempts, d.died_at as at, null as locked_by, d.last_error
        from ${t.deadJobs} d join unnest(${ids}::bigint[]) with ordinality as p(id, n) on d.id = p.id order by p.n`
    : await tx<SummaryRow[]>`
        select j.id::text, j.queue, ${tx.unsafe(STATE_OF)} as state, left(j.payload::text, ${PREVIEW_CHARS}) as preview,
               j.priority, j.attempts, j.max_attempts, j.run_at as at, j.locked_by, j.last_error
        from ${t.jobs} j join unnest(${ids}::bigint[]) with ordinality as p(id, n) on j.id = p.id order by p.n`;
  return rows.map(summary);
}

async function finishedSummaries(tx: TransactionSql, t: Tables, hits: Walked[]): Promise<JobSummary[]> {
  const rows = await foundRows<SummaryRow>(tx, t, hits, tx`
    h.id::text, h.queue, h.state, left(h.payload::text, ${PREVIEW_CHARS}) as preview, h.priority, h.attempts,
    h.max_attempts, h.finished_at as at, null as locked_by, h.last_error`);
  return rows.map(summary);
}

function summary(r: SummaryRow): JobSummary {
  return {
    id: r.id,
    queue: r.queue,
    state: r.state,
    payloadPreview: r.preview,
    priority: r.priority,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    at: r.at,
    lockedBy: r.locked_by,
    lastError: r.last_error,
  };
}

interface SummaryRow {
  id: string;
  queue: string;
  state: AnyJobState;
  preview: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  at: Date;
  locked_by: string | null;
  last_error: string | null;
}

/** One job wherever it is (getJob(): live, finished or dead), with its dedupe key; null when it is nowhere. */
export async function findJob(sql: Sql, schema: string, id: string): Promise<JobDetail | null> {
  assertJobId(id);
  const t = tables(sql, schema);
  const [job, [row]] = await Promise.all([
    getJob(sql, t, id),
    sql<{ dedupe_key: string | null; dead: boolean }[]>`
      select j.dedupe_key, false as dead from ${t.jobs} j where j.id = ${id}
      union all
      select d.dedupe_key, true from ${t.deadJobs} d where d.id = ${id}
      order by dead limit 1`,
  ]);
  return job && { ...job, dedupeKey: row?.dedupe_key ?? null, inDeadJobs: row?.dead ?? false };
}
