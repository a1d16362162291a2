// Browsing jobs one page at a time, live (pgq.jobs) or dead (pgq.dead_jobs), filtered by queue,
// state, id and payload, and one job in full wherever it is (q.getJob()): what the dashboard's
// job pages read.
//
// Every page is bounded, however many jobs there are and however few match: a page walks at most
// WALK_LIMIT rows along one index, in that index's order, and filters what it walked. When the
// walk runs out before the page fills, the page says so and its cursor continues the walk where
// it stopped, so a search for a rare payload costs the operator a click per WALK_LIMIT jobs and
// the database a bounded read per click, never a scan of a million rows. The walks:
//
//   dead                 dead_jobs_died_at or dead_jobs_queue, newest first
//   running              jobs_leased, in lease-expiry order (as many rows as workers have slots)
//   ready, retrying      jobs_claim for one queue, in the order workers claim them
//   anything else        the primary key, newest first
//
// Reads run through operatorRead(), which rules out the scans that cannot stop at a limit.
import type { PendingQuery, Row as PgRow, TransactionSql } from "postgres";
import type { Sql } from "postgres";
import { operatorRead } from "../db/operator-read.js";
import { tables, type Tables } from "../db/tables.js";
import type { ErrorDetails } from "../error-record.js";
import type { JobInfo } from "../types.js";
import { assertJobId, getJob } from "./history.js";
import { ValidationError } from "../errors.js";
import { JOB_STATES, QUEUED, RUNNING, STATE_OF, type JobState } from "../job-state.js";
import { assertInteger, assertQueueName } from "../validate.js";

export type ListedState = JobState | "dead";
export const LISTED_STATES: readonly ListedState[] = ["ready", "scheduled", "running", "retrying", "dead"];

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
  state: ListedState;
  /** The payload's JSON, cut to PREVIEW_CHARS. */
  payloadPreview: string;
  priority: number;
  attempts: number;
  maxAttempts: number;
  /** When it may run (live), or when it died (dead). */
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

export const WALK_LIMIT = 5000;
const PREVIEW_CHARS = 160;
const BIGINT_ID = /^[1-9][0-9]{0,18}$/;

type Walk = "dead" | "running" | "claim" | "id";
interface Walked {
  id: string;
  /** The walk's sort key, as text that casts back exactly (timestamps keep their microseconds). */
  k1: string | null;
  k2: string | null;
  n: number;
  hit: boolean;
}

export async function listJobs(sql: Sql, schema: string, filter: JobListFilter = {}): Promise<JobPage> {
  const { queue, state, id, payload, cursor, limit = 50 } = filter;
  if (queue !== undefined) assertQueueName(queue);
  if (state !== undefined && !LISTED_STATES.includes(state)) {
    throw new ValidationError("INVALID_OPTION", `state must be one of ${LISTED_STATES.join(", ")}`);
  }
  if (id !== undefined && !BIGINT_ID.test(id)) throw new ValidationError("INVALID_OPTION", "a job id is a positive integer");
  assertInteger(limit, "limit", 1, 500);
  const t = tables(sql, schema);
  const walk: Walk = state === "dead" ? "dead" : state === "running" ? "running" : (state === "ready" || state === "retrying") && queue !== undefined ? "claim" : "id";
  const after = cursor === undefined ? undefined : decodeCursor(cursor, walk);

  return operatorRead(sql, async (tx) => {
    const hit = matches(tx, state, payload, queue, id);
    const rows = await tx<Walked[]>`
      with walked as (
        select w.*, row_number() over () as n from (${walkQuery(tx, t, walk, queue, id, after, hit)}) w
      )
      (select id::text, k1, k2, n::int, true as hit from walked where hit order by n limit ${limit + 1})
      union all
      (select id::text, k1, k2, n::int, false from walked order by n desc limit 1)`;
    const last = rows.find((r) => !r.hit);
    const hits = rows.filter((r) => r.hit);
    const walked = last?.n ?? 0;
    const shown = hits.slice(0, limit);
    const full = hits.length > limit;
    const walkStopped = !full && walked >= WALK_LIMIT;
    const resume = full ? shown[shown.length - 1] : walkStopped ? last : undefined;
    return {
      jobs: await summaries(tx, t, walk === "dead", shown.map((r) => r.id)),
      next: resume ? encodeCursor(walk, resume) : null,
      walked,
      walkStopped,
    };
  });
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

/** The filter, applied to each walked row (aliased j or d): queue, state and payload. */
function matches(tx: TransactionSql, state: ListedState | undefined, payload: string | undefined, queue: string | undefined, id: string | undefined) {
  const parts: PendingQuery<PgRow[]>[] = [];
  const alias = state === "dead" ? "d" : "j";
  if (queue !== undefined) parts.push(tx`${tx(alias)}.queue = ${queue}`);
  if (id !== undefined) parts.push(tx`${tx(alias)}.id = ${id}::bigint`);
  if (state !== undefined && state !== "dead") parts.push(tx`(${tx.unsafe(JOB_STATES[state])})`);
  if (payload !== undefined && payload !== "") {
    const json = asJsonContainer(payload);
    parts.push(json === undefined
      ? tx`strpos(${tx(alias)}.payload::text, ${payload}) > 0`
      : tx`${tx(alias)}.payload @> ${json}::text::jsonb`);
  }
  if (parts.length === 0) return tx`true`;
  return parts.reduce((a, b) => tx`${a} and ${b}`);
}

function asJsonContainer(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" ? JSON.stringify(value) : undefined;
  } catch {
    return undefined;
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
  return rows.map((r) => ({
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
  }));
}

interface SummaryRow {
  id: string;
  queue: string;
  state: ListedState;
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

function encodeCursor(walk: Walk, row: Walked): string {
  const key = walk === "id" ? [row.id] : walk === "claim" ? [row.k1, row.k2, row.id] : [row.k1, row.id];
  return Buffer.from(JSON.stringify([walk, ...key])).toString("base64url");
}

function decodeCursor(cursor: string, walk: Walk): string[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString());
  } catch {
    value = undefined;
  }
  const length = walk === "id" ? 2 : walk === "claim" ? 4 : 3;
  if (!Array.isArray(value) || value[0] !== walk || value.length !== length || !value.every((v) => typeof v === "string")) {
    throw new ValidationError("INVALID_OPTION", "this page's cursor does not belong to these filters: start again from the first page");
  }
  return value.slice(1) as string[];
}
