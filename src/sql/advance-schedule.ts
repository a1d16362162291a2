// A cron tick's job: the schedule moves on to its next tick, and the tick's job is inserted, in
// one statement. The compare-and-set on next_tick_at is what makes a tick's job unique:
// concurrent schedulers queue on the schedule's row lock, and once one has moved next_tick_at
// on, the others' WHERE no longer matches (READ COMMITTED re-checks it on the new row version),
// so their UPDATE, and with it their INSERT, touches nothing.
import type { Sql } from "postgres";
import { jobSettings } from "../enqueue.js";
import { execute, qualified, sqlText } from "../db/statement.js";
import { insertNewJobs } from "./insert-jobs.js";

export interface Advance {
  schedule: string;
  /** next_tick_at as the scheduler read it, as text: compared exactly (a Date keeps only ms). */
  expected: string;
  /** The tick whose job this is: the job's run_at, and the schedule's last_tick_at. */
  tick: Date;
  next: Date;
  /** False to move the schedule on without a job (missed ticks, with catchUp "none"). */
  enqueue: boolean;
}

/** Returns the job's id, or undefined when another scheduler had the tick or none was wanted. */
export async function advanceSchedule(sql: Sql, schema: string, a: Advance): Promise<string | undefined> {
  const [job] = await execute<{ id: string }>(sql, sqlText`
    with advanced as (
      update ${qualified(schema, "schedules")}
      set next_tick_at = ${a.next}::timestamptz,
          last_tick_at = case when ${a.enqueue}::boolean then ${a.tick}::timestamptz else last_tick_at end
      where name = ${a.schedule}::text and next_tick_at = ${a.expected}::timestamptz
      returning queue, payload
    )
    ${insertNewJobs(schema, {
      queue: sqlText`advanced.queue`,
      payload: sqlText`advanced.payload`,
      from: sqlText`from advanced where ${a.enqueue}::boolean`,
      // A schedule's jobs take enqueue's defaults.
      settings: jobSettings({ runAt: a.tick }),
    })}
    returning id`);
  return job?.id;
}
