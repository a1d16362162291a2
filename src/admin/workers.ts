// Which workers are registered, whether each is alive (its session marker is held), and the
// jobs each one runs: what answers "which worker has job N, and is it alive?".
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";
import { heldWorkerLocks } from "../sql/workers.js";

export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  queues: string[];
  mode: string;
  concurrency: number;
  startedAt: Date;
  lastSeenAt: Date;
  /** Its session marker is held: the process is connected (it may still be hung: leases cover that). */
  alive: boolean;
  /** The ids of the jobs it holds a lease on. */
  runningJobs: string[];
}

export async function listWorkers(sql: Sql, t: Tables): Promise<WorkerInfo[]> {
  return sql<WorkerInfo[]>`
    with held as materialized (${heldWorkerLocks(sql)}),
    running as (
      select j.locked_by, array_agg(j.id::text order by j.id) as ids
      from ${t.jobs} j where j.locked_until is not null group by j.locked_by
    )
    select w.name, w.host, w.pid, w.queues, w.mode, w.concurrency,
           w.started_at as "startedAt", w.last_seen_at as "lastSeenAt",
           w.lock_key in (select lock_key from held) as alive,
           coalesce(r.ids, '{}') as "runningJobs"
    from ${t.workers} w left join running r on r.locked_by = w.name
    order by w.started_at, w.name`;
}
