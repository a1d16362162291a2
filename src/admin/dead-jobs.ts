// Dead jobs: listing them, sending them back to pgq.jobs, and deleting them (`pgq dead ...`).
import { sql as k, type QueryCreator, type SelectQueryBuilder } from "kysely";
import type { Sql } from "postgres";
import { ValidationError } from "../errors.js";
import { fromFragment, queryBuilder, run, type Database } from "../db/kysely.js";
import { sqlText } from "../db/statement.js";
import { reinsertDeadJobs } from "../sql/insert-jobs.js";
import { assertInteger, assertQueueName } from "../validate.js";

export interface DeadJob {
  id: string;
  queue: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  priority: number;
  lastError: string | null;
  /** One entry per failed attempt: { attempt, at, worker, error }. */
  errors: unknown[];
  createdAt: Date;
  diedAt: Date;
  /**
   * Why it is here: "failed" (its last attempt failed, or it was discarded), or "expired" (not
   * started before its expiry, in a queue that keeps no history: see q.setQueue's retentionMs).
   */
  reason: "failed" | "expired";
}

/** Which dead jobs a command applies to; every given condition must hold. */
export interface DeadJobFilter {
  queue?: string;
  ids?: string[];
  /** Only jobs that died at least this long ago (database time). */
  olderThanMs?: number;
}

export interface ListDeadJobsOptions {
  queue?: string;
  /** Most recent first; default 20. */
  limit?: number;
}

export interface PurgeDeadJobsOptions extends DeadJobFilter {
  /** Required when no other condition is given: a purge without conditions deletes every dead job. */
  all?: boolean;
}

const BIGINT_ID = /^[1-9][0-9]{0,18}$/;

export async function listDeadJobs(sql: Sql, schema: string, options: ListDeadJobsOptions = {}): Promise<DeadJob[]> {
  const { queue, limit = 20 } = options;
  assertInteger(limit, "limit", 1, 100_000);
  const db = queryBuilder(schema);
  // Newest first, along dead_jobs_queue or dead_jobs_died_at.
  let query = db.selectFrom("dead_jobs").selectAll().orderBy("died_at", "desc").orderBy("id", "desc").limit(limit);
  if (queue !== undefined) {
    assertQueueName(queue);
    query = query.where("queue", "=", queue);
  }
  const rows = await run(sql, query);
  return rows.map((r) => ({
    id: String(r.id),
    queue: r.queue,
    payload: r.payload,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    priority: r.priority,
    lastError: r.last_error,
    errors: r.errors as unknown[],
    createdAt: r.created_at,
    diedAt: r.died_at,
    reason: r.reason,
  }));
}

/**
 * Moves dead jobs back to pgq.jobs, ready at once with all their attempts ahead of them. A job
 * keeps its id and its error history. One statement, so the move is all or nothing. A job
 * whose dedupe key is held by a live job stays dead (running it would break the key's
 * promise), as do all but the most recent of several dead jobs sharing a key. Returns the
 * ids moved.
 */
export async function retryDeadJobs(sql: Sql, schema: string, filter: DeadJobFilter = {}): Promise<string[]> {
  const db = queryBuilder(schema);
  const picked = matching(db, filter)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom("jobs as live").whereRef("live.queue", "=", "dead_jobs.queue").whereRef("live.dedupe_key", "=", "dead_jobs.dedupe_key"))),
    )
    .distinctOn([k`dead_jobs.queue`, k`coalesce(dead_jobs.dedupe_key, dead_jobs.id::text)`])
    .select("dead_jobs.id")
    .orderBy(k`dead_jobs.queue`)
    .orderBy(k`coalesce(dead_jobs.dedupe_key, dead_jobs.id::text)`)
    .orderBy("dead_jobs.died_at", "desc");
  const moved = db.deleteFrom("dead_jobs").where("id", "in", k<string>`(select id from picked)`).returningAll();
  const query = k<{ id: string }>`
    with picked as (${picked}), moved as (${moved})
    ${fromFragment(reinsertDeadJobs(schema, sqlText`from moved as dead`))}
    returning id`;
  const rows = await run(sql, { compile: () => query.compile(db) });
  return rows.map((r) => String(r.id)).sort(byNumericId);
}

/** Deletes dead jobs; returns how many. */
export async function purgeDeadJobs(sql: Sql, schema: string, options: PurgeDeadJobsOptions = {}): Promise<number> {
  const { all = false, ...filter } = options;
  if (!all && filter.queue === undefined && filter.ids === undefined && filter.olderThanMs === undefined) {
    throw new ValidationError("INVALID_OPTION", "purging without a queue, ids or age deletes every dead job: pass all: true to mean it");
  }
  const db = queryBuilder(schema);
  const query = db
    .with("deleted", (db) => db.deleteFrom("dead_jobs").where("id", "in", matching(db, filter).select("dead_jobs.id")).returning("id"))
    .selectFrom("deleted")
    .select(k<string>`count(*)`.as("n"));
  const [row] = await run(sql, query);
  return Number(row?.n ?? 0);
}

function matching(db: QueryCreator<Database>, filter: DeadJobFilter): SelectQueryBuilder<Database, "dead_jobs", object> {
  const { queue, ids, olderThanMs } = filter;
  let query = db.selectFrom("dead_jobs");
  if (queue !== undefined) {
    assertQueueName(queue);
    query = query.where("dead_jobs.queue", "=", queue);
  }
  if (ids !== undefined) {
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === "string" && BIGINT_ID.test(id))) {
      throw new ValidationError("INVALID_OPTION", "ids must be a non-empty list of job ids (positive integers, as strings)");
    }
    query = query.where("dead_jobs.id", "=", k<string>`any(${ids}::bigint[])`);
  }
  if (olderThanMs !== undefined) {
    assertInteger(olderThanMs, "olderThanMs", 0, Number.MAX_SAFE_INTEGER);
    query = query.where("dead_jobs.died_at", "<=", k<Date>`now() - ${olderThanMs}::double precision * interval '1 millisecond'`);
  }
  return query;
}

function byNumericId(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
