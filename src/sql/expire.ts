// Expiry: jobs that waited past their expiry leave the queue without running.
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { QUEUED } from "../job-state.js";
import { limitOf } from "../db/session-plans.js";
import type { Tables } from "../db/tables.js";
import { jobCounters } from "../telemetry/metrics.js";
import { notifyFinished, recordHistory, retentionMs } from "./history.js";

/** Jobs per statement: a backlog that expired at once is finished over a few ticks. */
const EXPIRE_BATCH = 1000;

/**
 * Finishes up to EXPIRE_BATCH waiting jobs past their expiry as expired: to pgq.history, or,
 * in a queue that keeps no history (retention 0), to pgq.dead_jobs with reason 'expired', so
 * that an operator still sees them. Jobs with an expires_at are found along jobs_expiry; those
 * of a queue with a ttl_ms, along jobs_claim from the queue's oldest run_at. The claim never
 * hands these jobs out meanwhile (sql/claim.ts). Returns how many expired, per queue (none: []).
 */
export async function expireJobs(sql: Sql, t: Tables): Promise<{ queue: string; n: number }[]> {
  return sql<{ queue: string; n: number }[]>`
    with past_expiry as (
      select j.id from ${t.jobs} j
      where j.expires_at is not null and j.expires_at <= now() and j.locked_until is null
      order by j.expires_at limit ${limitOf(sql, EXPIRE_BATCH)} for update skip locked
    ), past_ttl as (
      select e.id from ${t.queues} s cross join lateral (
        select j.id from ${t.jobs} j
        where j.queue = s.queue and ${sql.unsafe(QUEUED)}
          and j.run_at < now() - s.ttl_ms::double precision * interval '1 millisecond'
        limit ${limitOf(sql, EXPIRE_BATCH)} for update of j skip locked) e
      where s.ttl_ms is not null
      limit ${limitOf(sql, EXPIRE_BATCH)}
    ), due as (
      select id from past_expiry union select id from past_ttl
    ), expired as (
      -- By key: as a join, the planner may walk the whole primary key for the first row of the
      -- other side, every dead entry a held snapshot keeps included (135,000 buffers at 235,000).
      delete from ${t.jobs} j where j.id = any(array(select id from due))
      returning j.*, 'expired'::text as state, null::jsonb as result
    ), recorded as (${recordHistory(sql, t, "expired")}),
    buried as (
      insert into ${t.deadJobs} (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms,
                                 backoff_max_ms, timeout_ms, dedupe_key, group_key, last_error, errors, created_at, reason)
      select e.id, e.queue, e.payload, e.priority, e.attempts, e.max_attempts, e.backoff_base_ms,
             e.backoff_max_ms, e.timeout_ms, e.dedupe_key, e.group_key, e.last_error, e.errors, e.created_at, 'expired'
      from expired e
      where ${retentionMs(sql, t, sql`e.queue`)} = 0
    ), notified as (${notifyFinished(sql, t, "expired")})
    select queue, count(*)::int as n from expired where (select count(*) from notified) >= 0 group by queue`;
}

/** expireJobs(), counted in pgq_jobs_expired_total and logged: what maintenance and a worker's claim run. */
export async function finishExpired(sql: Sql, t: Tables, log: Logger): Promise<void> {
  const expired = await expireJobs(sql, t);
  for (const { queue, n } of expired) jobCounters.expired.labels({ queue }).value += n;
  const jobs = expired.reduce((sum, e) => sum + e.n, 0);
  if (jobs > 0) log.info({ jobs }, "finished jobs that expired before any worker started them");
}
