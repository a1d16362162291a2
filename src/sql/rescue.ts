// The rescue of jobs whose worker died: its session ended (its marker, src/sql/workers.ts, is
// gone), or its lease lapsed without a completion or a failure.
import type { Sql } from "postgres";
import { limitOf } from "../db/session-plans.js";
import type { Tables } from "../db/tables.js";
import { errorRecord } from "../error-record.js";
import { WorkerLostError } from "../errors.js";
import { failJobs, RESTART_GRACE, type FailureOutcome } from "./fail.js";
import { announceRequeued } from "./release.js";
import { heldWorkerLocks } from "./workers.js";

const BATCH = 500;

/** What a walk for lapsed leases did, and where the next may start. */
export interface LapsedRescue {
  outcomes: FailureOutcome[];
  /** The next walk may start at this lease end: every live lease before it was seen by this one. */
  next: Date | null;
}

/** A lease taken by a statement still in flight when a walk passes may end this far before the walk's time. */
const LATE_LEASE_SLACK_MS = 5_000;

/**
 * Records a failed attempt for every job whose lease lapsed (its worker died, hung or lost the
 * database) and makes it claimable again at once; a job that was on its last attempt moves to
 * dead_jobs saying that its worker died. Any process may run this at any time: the failure is
 * fenced by the lease token and applies only while the lease is still lapsed, so a worker
 * that renews in time keeps its job, and two rescuers never both record the same attempt.
 *
 * The lapsed leases are read along jobs_leased, oldest first, from `from`: with a snapshot held
 * open, the index keeps an entry for every job finished since, all with past lease ends, and a
 * walk from the head re-reads them all (issue 17). A walk that saw every lapsed lease returns
 * where the next may start: its own time, less a slack for leases taken by statements in flight
 * as it walked; any lease taken later ends after that. The caller walks from the head now and
 * then all the same (maintenance.ts), for a lease that slipped behind.
 */
export async function rescueLapsedLeases(sql: Sql, t: Tables, from: Date | null = null): Promise<LapsedRescue> {
  const rows = await sql<{ id: string | null; queue: string; lease_token: string; locked_by: string | null; locked_until: Date; next: Date }[]>`
    select l.*, now() - ${LATE_LEASE_SLACK_MS}::double precision * interval '1 millisecond' as next
    from (select 1) one
    left join lateral (
      select id, queue, lease_token, locked_by, locked_until
      from ${t.jobs}
      where locked_until < now() and locked_until >= coalesce(${from}::timestamptz, '-infinity')
      order by locked_until
      limit ${limitOf(sql, BATCH)}
    ) l on true`;
  const lapsed = rows.filter((r): r is (typeof r & { id: string }) => r.id !== null);
  const outcomes = await failJobs(
    sql,
    t,
    lapsed.map((job) => ({
      id: job.id,
      token: job.lease_token,
      error: errorRecord(new WorkerLostError(job.locked_by, job.locked_until)),
      retryInMs: 0,
    })),
    "lapsed",
  );
  await announceRescued(sql, t, lapsed, outcomes);
  // A full batch may have left lapsed leases behind: the next walk starts where this one did.
  return { outcomes, next: lapsed.length < BATCH ? rows[0]!.next : from };
}

export interface LostWorker {
  name: string;
  lock_key: number;
}

/**
 * Registered workers that hold leases while no session holds their marker: their process died,
 * or lost its marker connection and is taking it again. One statement, cheap enough for every
 * second: pg_locks once, and only for a worker whose marker is absent (almost never), whether it
 * holds a lease. Walking jobs_leased for every look would re-read, while a snapshot is held, the
 * entry of every job finished since (issue 17). Nothing during the grace after a server restart,
 * when every marker is being taken again.
 */
export async function findLostWorkers(sql: Sql, t: Tables): Promise<LostWorker[]> {
  // The lease check is a LATERAL over the absent workers, so that it runs once per absent worker
  // and never otherwise, whatever plan the session's settings favour (db/session-plans.ts).
  return sql<LostWorker[]>`
    with held as materialized (${heldWorkerLocks(sql)}),
    absent as materialized (
      select w.name, w.lock_key
      from ${t.workers} w
      where w.lock_key not in (select lock_key from held)
        and pg_postmaster_start_time() < now() - ${RESTART_GRACE}::interval
    )
    select a.name, a.lock_key
    from absent a
    cross join lateral (select from ${t.jobs} j where j.locked_by = a.name and j.locked_until is not null limit 1) leased`;
}

/**
 * Records a failed attempt, with a WorkerLostError, for every job of these workers, and makes it
 * claimable again at once, as for a lapsed lease; the statement checks again that each worker's
 * marker is absent, so a worker that took it back meanwhile keeps its jobs.
 */
export async function rescueLostWorkers(sql: Sql, t: Tables, workers: string[]): Promise<FailureOutcome[]> {
  const held = await sql<{ id: string; queue: string; lease_token: string; locked_by: string }[]>`
    select id, queue, lease_token, locked_by
    from ${t.jobs}
    where locked_until is not null and locked_by = any(${workers}::text[])
    limit ${limitOf(sql, BATCH)}`;
  const outcomes = await failJobs(
    sql,
    t,
    held.map((job) => ({
      id: job.id,
      token: job.lease_token,
      error: errorRecord(new WorkerLostError(job.locked_by, null)),
      retryInMs: 0,
    })),
    "lapsed-or-worker-lost",
  );
  await announceRescued(sql, t, held, outcomes);
  return outcomes;
}

/**
 * Tells every process's workers that rescued jobs are claimable, one `queue\nrewind` per queue:
 * failJobs() moves no job into a queue (the ready trigger fires on inserts only), and the rescuer
 * is one process (src/maintenance/maintenance.ts) whose own workers may not take these queues.
 * `rewind`, because a rescued job's run_at may lie behind the claim bounds (src/worker/claim-bounds.ts).
 */
async function announceRescued(sql: Sql, t: Tables, jobs: { id: string; queue: string }[], outcomes: FailureOutcome[]): Promise<void> {
  const retrying = new Set(outcomes.filter((o) => o.outcome === "retrying").map((o) => o.id));
  await announceRequeued(sql, t, [...new Set(jobs.filter((j) => retrying.has(j.id)).map((j) => j.queue))]);
}
