// Completion: a finished job leaves pgq.jobs for pgq.history, with its result, and its waiters
// are notified, all in one statement. Both statements are fenced by the lease token, so a
// worker whose lease was lost (and whose job may have been claimed again, or was cancelled)
// cannot complete it.
import type { Sql, TransactionSql } from "postgres";
import { probeByIndex } from "../db/session-plans.js";
import type { Tables } from "../db/tables.js";
import { notifyFinished, recordHistory } from "./history.js";

/**
 * Transaction mode: the completion, inside the handler's transaction, so that the handler's
 * writes and the completion commit together or not at all. It is sent without waiting for its
 * result, so that it travels with the COMMIT that follows: one round trip per job instead of
 * two. For that, a lost lease must fail the transaction by itself: when the delete finds no row
 * (another worker has the job now), the division by zero aborts the transaction, and the COMMIT
 * rolls it back. Resolves to false if the lease was lost. The caller awaits it once the COMMIT
 * has returned, and must: any other error means that the COMMIT rolled back.
 */
export function completeInTransaction(tx: TransactionSql, t: Tables, id: string, token: string, result: string | null): Promise<boolean> {
  const sql = tx as unknown as Sql;
  const completed = tx`
    with done as (
      delete from ${t.jobs} where id = ${id} and lease_token = ${token}
      returning *, 'completed'::text as state, ${result}::text::jsonb as result
    ), recorded as (${recordHistory(sql, t, "done")}),
    notified as (${notifyFinished(sql, t, "done")})
    select 1 / count(*), (select count(*) from notified) from done`
    .execute()
    .then(
      () => true,
      (error: unknown) => {
        if ((error as { code?: string }).code === LEASE_LOST) return false;
        throw error;
      },
    );
  // Until the caller awaits it, after the COMMIT, a failure must not count as unhandled.
  completed.catch(() => undefined);
  return completed;
}

/** division_by_zero: what completeInTransaction's statement raises when the lease was lost. */
const LEASE_LOST = "22012";

/** Lease mode: many completions in one statement. Returns the ids that were still held. */
export async function completeJobs(sql: Sql, t: Tables, ids: string[], tokens: string[], results: (string | null)[]): Promise<Set<string>> {
  const rows = await sql<{ id: string }[]>`
    with by_index as (${probeByIndex(sql)}),
    -- Each job's token and result, looked up by id: the jobs are reached by their ids alone, never
    -- by a join whose plan depends on statistics (db/session-plans.ts). jsonb_object() builds each
    -- lookup in one call, five times faster than aggregating the rows of an unnest().
    sent as materialized (
      select jsonb_object(${ids}::bigint[]::text[], ${tokens}::text[]) as tokens,
             jsonb_object(${ids}::bigint[]::text[], ${results}::text[]) as results
    ),
    done as (
      delete from ${t.jobs} j
      using sent, by_index
      where j.id = any(${ids}::bigint[]) and j.lease_token = (sent.tokens ->> j.id::text)::uuid
      returning j.*, 'completed'::text as state, (sent.results ->> j.id::text)::jsonb as result
    ), recorded as (${recordHistory(sql, t, "done")}),
    notified as (${notifyFinished(sql, t, "done")})
    select d.id from done d where (select count(*) from notified) >= 0`;
  return new Set(rows.map((r) => r.id));
}
