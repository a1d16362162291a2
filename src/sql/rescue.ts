// The rescue of jobs whose worker died: their lease lapsed without a completion or a failure.
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";
import { errorRecord } from "../error-record.js";
import { WorkerLostError } from "../errors.js";
import { failJobs, type FailureOutcome } from "./fail.js";

const BATCH = 500;

/**
 * Records a failed attempt for every job whose lease lapsed (its worker died, hung or lost the
 * database) and makes it claimable again at once; a job that was on its last attempt moves to
 * dead_jobs saying that its worker died. Any process may run this at any time: the failure is
 * fenced by the lease token and applies only while the lease is still lapsed, so a worker
 * that renews in time keeps its job, and two rescuers never both record the same attempt.
 * The lapsed leases are read along jobs_leased, oldest first.
 */
export async function rescueLapsedLeases(sql: Sql, t: Tables): Promise<FailureOutcome[]> {
  const lapsed = await sql<{ id: string; lease_token: string; locked_by: string | null; locked_until: Date }[]>`
    select id, lease_token, locked_by, locked_until
    from ${t.jobs}
    where locked_until < now()
    order by locked_until
    limit ${BATCH}`;
  return failJobs(
    sql,
    t,
    lapsed.map((job) => ({
      id: job.id,
      token: job.lease_token,
      error: errorRecord(new WorkerLostError(job.locked_by, job.locked_until)),
      retryInMs: 0,
    })),
    true,
  );
}
