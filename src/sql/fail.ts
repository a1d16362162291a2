// Failure: the one statement that records failed attempts, for the worker (a handler threw or
// timed out) and for the rescue (a worker died and its lease lapsed).
import type { Sql } from "postgres";
import { readyChannel } from "../db/schema.js";
import { probeByIndex } from "../db/session-plans.js";
import type { Tables } from "../db/tables.js";
import { jsonbText, type ErrorRecord } from "../error-record.js";
import { notifyFinished, recordHistory } from "./history.js";
import { heldWorkerLocks } from "./workers.js";

export interface Failure {
  id: string;
  token: string;
  error: ErrorRecord;
  /** Wait before the next attempt, in ms from the database's now(). */
  retryInMs: number;
}

export interface FailureOutcome {
  id: string;
  outcome: "retrying" | "dead";
}

/**
 * Which jobs may be failed, beyond the lease token: any (the worker's own failure), only those
 * whose lease lapsed (the rescue), or also those whose worker's session is gone (the rescue of
 * lost workers, src/sql/rescue.ts).
 */
export type FailFence = "token" | "lapsed" | "lapsed-or-worker-lost";

/** After a server restart, workers get this long to take their markers again before their sessions count. */
export const RESTART_GRACE = "10 seconds";

/** How much of the error's text last_error keeps; the history keeps its structure (error-record.ts). */
const LAST_ERROR_CHARS = 8000;

/**
 * Each failed job either waits for its next attempt, or, after its last one, moves to
 * dead_jobs with its error history, in the same statement. Every row is fenced by its lease
 * token, and the rescue also requires the lease to have lapsed or, for a lost worker, its
 * marker to be absent still (both checked here, in the same statement), so a worker that
 * renewed in time, or took its marker again, keeps its job. FOR UPDATE makes PostgreSQL re-check the fence on the
 * newest row version if another transaction changed the job in the meantime.
 * A job whose lease was lost is simply missing from the result. A dead job is also recorded in
 * pgq.history (its queue's retention permitting), where getJob() and the history find it
 * after dead_jobs is purged, and its waiters are told.
 */
export async function failJobs(sql: Sql, t: Tables, failures: Failure[], fence: FailFence = "token"): Promise<FailureOutcome[]> {
  if (failures.length === 0) return [];
  const fenced =
    fence === "token" ? sql`true`
    : fence === "lapsed" ? sql`j.locked_until < now()`
    : sql`(j.locked_until < now() or exists (
        select from ${t.workers} w
        where w.name = j.locked_by
          and w.lock_key not in (${heldWorkerLocks(sql)})
          and pg_postmaster_start_time() < now() - ${RESTART_GRACE}::interval))`;
  return sql<FailureOutcome[]>`
    with by_index as (${probeByIndex(sql)}),
    failure as (
      select f.id, f.token, f.error, f.summary, f.retry_in_ms,
             ${jsonbText(failures.map((f) => f.error.details))}::text::jsonb -> (f.n - 1)::int as details
      from unnest(
        ${failures.map((f) => f.id)}::bigint[],
        ${failures.map((f) => f.token)}::uuid[],
        ${failures.map((f) => f.error.text.slice(0, LAST_ERROR_CHARS))}::text[],
        ${failures.map((f) => f.error.summary)}::text[],
        ${failures.map((f) => Math.max(0, Math.round(f.retryInMs)))}::bigint[]
      ) with ordinality as f(id, token, error, summary, retry_in_ms, n), by_index
    ), failed as (
      select j.id, f.error, f.retry_in_ms, j.attempts < j.max_attempts as will_retry,
             j.errors || jsonb_build_object(
               'attempt', j.attempts, 'at', now(), 'worker', j.locked_by,
               'error', f.summary, 'details', f.details) as history
      from ${t.jobs} j
      join failure f on j.id = f.id and j.lease_token = f.token
      -- pgq.jobs is reached by key (db/session-plans.ts says why); the joins with the failures
      -- remain, as failures come a few at a time.
      where j.id = any(${failures.map((f) => f.id)}::bigint[]) and ${fenced}
      for update of j
    ), retried as (
      update ${t.jobs} j
      set run_at = now() + failed.retry_in_ms * interval '1 millisecond',
          locked_by = null, locked_until = null, lease_token = null,
          last_error = failed.error, errors = failed.history
      from failed
      where j.id = failed.id and failed.will_retry and j.id = any(array(select id from failed where will_retry))
      returning j.id, j.queue, j.priority, j.run_at
    ), announced as (
      -- Where the retries land, in the ready trigger's words (migration 000016): a retry may land
      -- behind a worker's claim bound (src/worker/claim-bounds.ts), and every process's workers
      -- learn when it is due, not only this one's.
      select pg_notify(${readyChannel(t.schema)},
                       r.queue || case when r.due <= now() then '' else E'\n' || ceil(extract(epoch from r.due - now()) * 1000)::bigint end
                       || E'\np' || r.priority || '@' || floor(extract(epoch from r.due) * 1000)::bigint)
      from (select queue, priority, min(run_at) as due from retried group by queue, priority) r
    ), buried as (
      delete from ${t.jobs} j
      using failed
      where j.id = failed.id and not failed.will_retry and j.id = any(array(select id from failed where not will_retry))
      returning j.id, j.queue, j.payload, j.priority, j.attempts, j.max_attempts, j.backoff_base_ms,
                j.backoff_max_ms, j.timeout_ms, j.dedupe_key, j.group_key, j.created_at, j.started_at,
                j.locked_by, j.progress, j.trace_context, failed.error as last_error, failed.history as errors,
                'dead'::text as state, null::jsonb as result
    ), dead as (
      insert into ${t.deadJobs} (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms,
                                 backoff_max_ms, timeout_ms, dedupe_key, group_key, last_error, errors, created_at,
                                 trace_context)
      select id, queue, payload, priority, attempts, max_attempts, backoff_base_ms,
             backoff_max_ms, timeout_ms, dedupe_key, group_key, last_error, errors, created_at,
             trace_context
      from buried
      returning id
    ), recorded as (${recordHistory(sql, t, "buried")}),
    notified as (${notifyFinished(sql, t, "buried")})
    select id, 'retrying' as outcome from retried where (select count(*) from announced) >= 0
    union all
    select id, 'dead' from dead where (select count(*) from notified) >= 0`;
}
