// The claim: the one statement that hands ready jobs to a worker.
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";
import { QUEUED, READY } from "../job-state.js";

export interface ClaimedJob {
  id: string;
  queue: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  priority: number;
  group_key: string | null;
  created_at: Date;
  lease_token: string;
  timeout_ms: number | null;
  backoff_base_ms: number;
  backoff_max_ms: number;
}

export interface ClaimRequest {
  queues: string[];
  limit: number;
  worker: string;
  leaseMs: number;
}

/**
 * Claims up to `limit` ready jobs, FIFO within a priority, and gives each a lease and a fresh
 * lease token. The claim commits at once and counts the attempt in the same statement, in
 * both processing modes: an attempt whose worker is killed (SIGKILL, OOM) is still counted
 * when its lease lapses, so a job that kills its worker reaches dead_jobs instead of looping.
 *
 * For each queue, the LATERAL subquery walks the partial index jobs_claim in (priority,
 * run_at, id) order and stops after `limit` rows: a short index scan however large the table.
 * SKIP LOCKED sits on that scan so that concurrent workers each take the next rows nobody
 * holds instead of queueing behind one another's locks. A plain `queue = any(...)` would make
 * PostgreSQL sort every ready row of all the queues first.
 *
 * A job with a group key is claimable only while it is its group's head: the members behind
 * it have group_waiting set, by triggers (migration 000002), until the head completes or dies,
 * however long it runs or waits for a retry. Waiting members are not in jobs_claim at all, so
 * the scan never walks over a blocked backlog.
 *
 * A queue paused in pgq.queues (q.pause()) is left out: every worker in every process sees it at
 * its next claim, and its waiting jobs are neither claimed nor walked.
 *
 * A job past its expiry (expires_at, or its queue's ttl_ms after its run_at) is never handed
 * out: the claim steps over it, and maintenance finishes it as expired (src/sql/expire.ts). The
 * queue's ttl is read once per queue, like the pause, and bounds run_at from below in the index.
 *
 * The claim commits without waiting for its WAL to reach the disk (synchronous_commit off, for
 * this statement only): that wait is most of an idle worker's latency, and the claim does not
 * need it. If the server crashes before the WAL writer flushes it (within a few hundred ms), the
 * claim is undone as if it never happened: the job is ready again with its attempt uncounted,
 * and the worker that had it cannot complete it, since completions are fenced by the lease
 * token. Everything that must survive a crash waits for the disk: a transaction-mode job's
 * commit (whose flush also covers the claim before it), completions, failures, dead jobs.
 */
export async function claimJobs(sql: Sql, t: Tables, request: ClaimRequest): Promise<ClaimedJob[]> {
  return sql<ClaimedJob[]>`
    with no_flush_wait as (select set_config('synchronous_commit', 'off', true)),
    claimable as (
      select c.id
      from no_flush_wait, unnest(${request.queues}::text[]) as q(name)
      cross join lateral (
        select j.id, j.priority, j.run_at
        from ${t.jobs} j
        where j.queue = q.name and ${sql.unsafe(READY)}
          -- Refers to no column of j: a one-time filter, checked (one primary-key probe) before
          -- the scan, so a paused queue's jobs are neither walked nor locked.
          and not exists (select from ${t.queues} s where s.queue = q.name and s.paused)
          and (j.expires_at is null or j.expires_at > now())
          and j.run_at >= coalesce(now() - (select s.ttl_ms from ${t.queues} s where s.queue = q.name)::double precision
                                           * interval '1 millisecond', '-infinity')
        order by j.priority, j.run_at, j.id
        limit ${request.limit}
        for update skip locked
      ) c
      order by c.priority, c.run_at, c.id
      limit ${request.limit}
    )
    update ${t.jobs} j
    set attempts     = j.attempts + 1,
        locked_by    = ${request.worker},
        locked_until = now() + ${request.leaseMs}::double precision * interval '1 millisecond',
        lease_token  = gen_random_uuid(),
        started_at   = coalesce(j.started_at, now())
    from claimable
    where j.id = claimable.id
    returning j.id, j.queue, j.payload, j.attempts, j.max_attempts, j.priority, j.group_key,
              j.created_at, j.lease_token, j.timeout_ms, j.backoff_base_ms, j.backoff_max_ms`;
}

/**
 * How many ms until the next job of these queues comes due (database time), or null if none
 * waits. An idle worker asks on start and after each poll that found nothing, so it sleeps
 * exactly until then; notifications tell it of delayed jobs enqueued in the meantime. No
 * index is ordered by run_at alone, so this reads the queue's waiting entries of jobs_claim:
 * that is why it runs only when a worker is idle, at most once per poll.
 */
export async function nextDueInMs(sql: Sql, t: Tables, queues: string[]): Promise<number | null> {
  const [row] = await sql<{ ms: number | null }[]>`
    select ceil(extract(epoch from min(j.run_at) - now()) * 1000)::float8 as ms
    from ${t.jobs} j
    where j.queue = any(${queues}::text[]) and ${sql.unsafe(QUEUED)} and j.run_at > now()`;
  return row?.ms ?? null;
}
