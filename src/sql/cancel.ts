// Cancel: the one statement that takes jobs away from the queue at an operator's or the
// application's word, waiting or running.
import type { Sql } from "postgres";
import { cancelChannel } from "../db/schema.js";
import type { Tables } from "../db/tables.js";
import { notifyFinished, recordHistory } from "./history.js";

/** Jobs per statement when a whole queue is cancelled: each statement stays short. */
export const CANCEL_BATCH = 1000;

export type CancelTarget = { ids: string[] } | { queue: string };

/**
 * Moves the jobs to pgq.history as cancelled, whatever they are doing, and returns their ids. A
 * waiting job never runs. A running job's row is gone, so its worker's completion, failure,
 * renewal and progress all find nothing under its lease token: its result is discarded, and a
 * transaction-mode job's own transaction rolls back with its completion (sql/complete.ts). The
 * ids of running jobs are notified on the cancel channel, where their worker's listener hears
 * them and aborts ctx.signal. A job that is completing at this moment holds its row's lock
 * until its transaction ends; the cancel then finds the row gone: it was too late, and says so
 * by leaving the id out.
 */
export async function cancelJobs(sql: Sql, t: Tables, target: CancelTarget): Promise<string[]> {
  const which = "ids" in target
    ? sql`j.id = any(${target.ids}::bigint[])`
    : sql`j.id in (select c.id from ${t.jobs} c where c.queue = ${target.queue} order by c.id limit ${CANCEL_BATCH})`;
  const rows = await sql<{ id: string }[]>`
    with cancelled as (
      delete from ${t.jobs} j where ${which}
      returning j.*, 'cancelled'::text as state, null::jsonb as result
    ), recorded as (${recordHistory(sql, t, "cancelled")}),
    notified as (${notifyFinished(sql, t, "cancelled")}),
    aborted as (
      select pg_notify(${cancelChannel(t.schema)}, string_agg(c.id::text, ','))
      from cancelled c where c.lease_token is not null
      having count(*) > 0
    )
    select c.id from cancelled c
    where (select count(*) from notified) >= 0 and (select count(*) from aborted) >= 0`;
  return rows.map((r) => r.id);
}
