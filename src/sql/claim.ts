// The claim: the one statement that hands ready jobs to a worker.
import type { Sql } from "postgres";
import { planOnce } from "../db/session-plans.js";
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
  /** From its run_at to the claim, by the database's clock: how long it waited, whatever the clocks. */
  waited_ms: number;
  /** A W3C traceparent, or null (telemetry/tracing.ts). */
  trace_context: string | null;
}

/**
 * Where a queue's claim starts its walk of jobs_claim: at (priority, run_at) and after. Before
 * it lie only entries of jobs already claimed or finished, which a held snapshot keeps in the
 * index (src/worker/claim-bounds.ts says how a worker keeps it safe).
 */
export interface ClaimBound {
  priority: number;
  runAt: Date;
}

/** What a claim took, and, if a limit held it back, when claiming again may find more. */
export interface Claim {
  jobs: ClaimedJob[];
  /** For each queue claimed from: where the next claim may start. */
  bounds: Map<string, ClaimBound>;
  /** The first job waiting in some queue is past its expiry: finish the expired now (sql/expire.ts). */
  expiredAhead: boolean;
  /** A limited queue runs as many jobs as it may: claim again when one of this worker's finishes. */
  full: boolean;
  /** A rate-limited queue's window is full: its next start is free in this many ms. */
  nextSlotInMs: number | null;
  /** Asked for (ClaimRequest.nextDue) and the claim was short: the next delayed job of the queues is due in this many ms; null if none waits. */
  nextDueInMs: number | null;
}

export interface ClaimRequest {
  queues: string[];
  /** Where each queue's walk starts (same order as queues); none, or null, walks from the queue's first entry. */
  bounds?: (ClaimBound | null)[];
  limit: number;
  worker: string;
  leaseMs: number;
  /** If the claim is short, also find when the next delayed job is due (on start and after each poll only: see below). */
  nextDue?: boolean;
  /** How far before the first live entry the next bounds sit (src/worker/claim-bounds.ts says how much is enough); 2 s if not given. */
  marginMs?: number;
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
 * A job with a group key is claimable only while it is one of its group's heads (the first
 * keyConcurrency live members, 1 unless the queue sets more): the members behind have
 * group_waiting set, by triggers (migrations 000002 and 000010), until a head completes or dies,
 * however long it runs or waits for a retry. Waiting members are not in jobs_claim at all, so
 * the scan never walks over a blocked backlog, and a key with a huge backlog shows the walk only
 * its heads: that is what shares claims fairly between keys.
 *
 * A queue paused in pgq.queues (q.pause()) is left out: every worker in every process sees it at
 * its next claim, and its waiting jobs are neither claimed nor walked.
 *
 * A queue with a concurrency or rate limit (q.setQueue()) is walked only as far as its budget:
 * claim_budget() (migration 000010) takes the queue's advisory lock, counts its running jobs and
 * its rate window, and says how many this claim may take. The lock is held until this statement
 * commits, so claims from a limited queue are serialised and none is over-admitted however many
 * workers claim at once. With a keyRateLimit, the walk also asks key_has_room() of each grouped
 * job it considers, under that lock, and passes over keys whose window is full; such jobs are
 * found again at a later claim (the poll, a notification or a freed slot). Unlimited queues
 * (the usual case) skip the function: no lock, and no read beyond their settings row. The
 * budget also says why it was short: `at_limit` (the queue runs as many as it may: claim again
 * when one of ours finishes) or `next_slot_ms` (the rate window is full until then), so that
 * workers sleep instead of spinning.
 *
 * The walk starts at the queue's bound, not at the head of its range: with a snapshot held open
 * (a long query, pg_dump, a forgotten BEGIN), every claimed job's old entry stays in jobs_claim,
 * and a walk from the head re-reads all of them (56 ms after ten minutes at 1,000 jobs/s). The
 * row comparison is an index condition, so the walk begins at the bound. The statement also
 * finds where the next claim may start: the first entry of a live, unclaimed job at or after the
 * bound, as this statement sees it (so the jobs it claims, and those other claims hold, are still
 * counted), but no later than the statement's own time (a delayed job first in its priority would
 * put the bound past the jobs enqueued next), less the request's margin for jobs that commit a
 * little after their run_at was taken and go unannounced.
 *
 * A job past its expiry (expires_at, or its queue's ttl_ms after its run_at) is never handed
 * out: the claim steps over it, and it is finished as expired (src/sql/expire.ts) by
 * maintenance, or at once by the worker whose claim saw one first in its queue (expiredAhead).
 * The queue's ttl is read once per queue, with its budget, and bounds run_at from below in the index.
 *
 * Every job of one claim gets the same lease token, drawn once per statement: a token has only
 * to differ between two claims of one job, since every fenced statement names the job's id too,
 * and one draw per row cost about a sixth of the claim's time at a thousand rows. Times come
 * back as numbers (ms), not timestamps: formatting and parsing three timestamps per row cost
 * the database and the worker more than the rest of the row but the payload.
 *
 * The claim is planned once per connection, not at every call. Left to choose, PostgreSQL plans
 * it afresh each time, since the generic plan's estimate (blind to the LIMIT) looks dearer than
 * a custom plan's; but planning this statement costs more than running it for a few jobs (1.3
 * ms against 0.8 for a claim of one). So each claim sets plan_cache_mode for its session, and
 * every later claim on that connection reuses the generic plan: the same index walks, checked
 * at a million jobs by test/inspect-plans.test.ts. A fresh connection's first claim sets it
 * again. Not without prepared statements (behind a transaction-mode pooler), where nothing is
 * reused and a session setting would leak to other clients of the server connection.
 *
 * The claim commits without waiting for its WAL to reach the disk (synchronous_commit off, for
 * this statement only): that wait is most of an idle worker's latency, and the claim does not
 * need it. If the server crashes before the WAL writer flushes it (within a few hundred ms), the
 * claim is undone as if it never happened: the job is ready again with its attempt uncounted,
 * and the worker that had it cannot complete it, since completions are fenced by the lease
 * token. Everything that must survive a crash waits for the disk: a transaction-mode job's
 * commit (whose flush also covers the claim before it), completions, failures, dead jobs.
 *
 * With `nextDue`, a claim that takes fewer jobs than its limit also says how many ms until the
 * next job of its queues comes due, so that an idle worker sleeps exactly until then (notifications
 * tell it of delayed jobs enqueued meanwhile, but not of other workers' retries). No index is
 * ordered by run_at alone, so this reads the queues' waiting entries of jobs_claim from their bounds
 * (every live job lies past its queue's bound, src/worker/claim-bounds.ts): it is asked for
 * only on start and at each poll, and it is a column of this statement only then, so that the
 * claims in between, the many, are neither slowed nor costed (planned past jit_above_cost) by it.
 */
export async function claimJobs(sql: Sql, t: Tables, request: ClaimRequest): Promise<Claim> {
  const bounds = request.bounds ?? [];
  // When asked, the news row also says when the next delayed job comes due, if this claim took
  // fewer jobs than it asked for; the job rows carry a null there.
  const due = request.nextDue
    ? {
        news: sql`, case when (select count(*) from claimed) < ${request.limit} then (
                 select ceil(extract(epoch from min(d.run_at) - now()) * 1000)::float8
                 from budget cross join lateral (
                   select min(j.run_at) as run_at from ${t.jobs} j
                   where j.queue = budget.name and ${sql.unsafe(QUEUED)} and j.run_at > now()
                     and (j.priority, j.run_at, j.id) >= (budget.bound_priority, budget.bound_run_at, 0)) d) end as next_due_ms`,
        job: sql`, null`,
      }
    : { news: sql``, job: sql`` };
  type Row = Omit<ClaimedJob, "created_at"> & { created_ms: number; at_limit: boolean | null; next_slot_ms: number | null; recorded: string | null;
                                                bounds: [string, number, number][] | null; expired_ahead: boolean | null; next_due_ms?: number | null; rank: string };
  const rows = await sql<Row[]>`
    with no_flush_wait as (select set_config('synchronous_commit', 'off', true)${planOnce(sql)}),
    budget as materialized (
      select q.name, b.granted, b.at_limit, b.next_slot_ms, b.admitted_at,
             s.rate_per_ms, s.key_rate_count, s.key_rate_per_ms, s.ttl_ms,
             coalesce(q.bound_priority, -2147483648) as bound_priority, coalesce(q.bound_run_at, '-infinity') as bound_run_at
      from no_flush_wait,
           unnest(${request.queues}::text[], ${bounds.map((b) => b?.priority ?? null)}::int[],
                  ${bounds.map((b) => b?.runAt.toISOString() ?? null)}::text[]::timestamptz[]) as q(name, bound_priority, bound_run_at)
      left join ${t.queues} s on s.queue = q.name
      cross join lateral (
        -- One branch runs per queue: each filter refers to no column of the branch, so it is
        -- checked once, before the branch, and the function is called only for limited queues.
        select ${request.limit}::int as granted, false as at_limit, null::float8 as next_slot_ms, null::timestamptz as admitted_at
        where s.concurrency is null and s.rate_count is null and s.key_rate_count is null
        union all
        select f.granted, f.at_limit, f.next_slot_ms, f.admitted_at
        from ${t.claimBudget}(q.name, ${request.limit}, s.concurrency, s.rate_count, s.rate_per_ms) f
        where s.concurrency is not null or s.rate_count is not null or s.key_rate_count is not null
      ) b
      where not coalesce(s.paused, false)
    ),
    claimable as (
      select c.id
      from budget
      -- The inner LIMIT is the request's own, so that a plan made for its values (a connection's
      -- first claim) costs the walk as the few rows it is: a limit it cannot see, it takes for a
      -- tenth of the queue, and the estimate of a million-job table then passes jit_above_cost.
      -- The generic plan reused after it stays below that too (test/inspect-plans.test.ts).
      -- Rows are locked as the outer LIMIT pulls them: no more than the budget grants.
      cross join lateral (
        select l.* from (
          select j.id, j.priority, j.run_at
          from ${t.jobs} j
          where j.queue = budget.name and ${sql.unsafe(READY)}
            and (j.priority, j.run_at, j.id) >= (budget.bound_priority, budget.bound_run_at, 0)
            and (j.expires_at is null or j.expires_at > now())
            -- A filter, not an index key: a second lower bound on run_at keeps PostgreSQL 15 from
            -- starting the scan at the bound's row.
            and (budget.ttl_ms is null or j.run_at >= now() - budget.ttl_ms::double precision * interval '1 millisecond')
            -- keyRateLimit: a key whose window is full is passed over (and its job stays ready).
            and (budget.key_rate_per_ms is null or j.group_key is null
                 or ${t.keyHasRoom}(budget.name, j.group_key, budget.key_rate_count, budget.key_rate_per_ms))
          order by j.priority, j.run_at, j.id
          limit ${request.limit}
          for update skip locked
        ) l
        limit budget.granted
      ) c
      order by c.priority, c.run_at, c.id
      limit ${request.limit}
    ),
    claimed as (
      update ${t.jobs} j
      set attempts     = j.attempts + 1,
          locked_by    = ${request.worker},
          locked_until = now() + ${request.leaseMs}::double precision * interval '1 millisecond',
          lease_token  = (select gen_random_uuid()),
          started_at   = coalesce(j.started_at, now())
      -- By key, and no join: db/session-plans.ts says why.
      where j.id = any(array(select id from claimable))
      returning j.id, j.queue, j.payload, j.attempts, j.max_attempts, j.priority, j.group_key, j.created_at,
                j.lease_token, j.timeout_ms, j.backoff_base_ms, j.backoff_max_ms, j.run_at, j.trace_context
    ),
    -- The next claim's bounds: a plain read, which takes no lock and sees the rows this
    -- statement claims as they were.
    next_bounds as (
      select budget.name, coalesce(f.priority, budget.bound_priority, 0) as priority,
             least(f.run_at, now()) - ${request.marginMs ?? 2000}::double precision * interval '1 millisecond' as run_at,
             f.expires_at <= now() or f.run_at < now() - budget.ttl_ms::double precision * interval '1 millisecond' as expired
      from budget
      left join lateral (
        select j.priority, j.run_at, j.expires_at
        from ${t.jobs} j
        where j.queue = budget.name and ${sql.unsafe(QUEUED)}
          and (j.priority, j.run_at, j.id) >= (budget.bound_priority, budget.bound_run_at, 0)
        order by j.priority, j.run_at, j.id
        limit 1
      ) f on true
    ),
    -- A rate-limited queue's windows get the starts this claim took, timed after their rows
    -- were leased; returned (and ignored) so that it runs.
    recorded as (
      select ${t.recordStarts}(budget.name, budget.rate_per_ms, n.started, budget.key_rate_per_ms, n.keys, budget.admitted_at)
      from budget
      cross join lateral (
        select count(*)::int as started, array_agg(distinct c.group_key) filter (where c.group_key is not null) as keys
        from claimed c where c.queue = budget.name) n
      where (budget.rate_per_ms is not null or budget.key_rate_per_ms is not null) and n.started > 0
    )
    -- The budget's news comes first, in a row of its own (sent even when nothing was claimed),
    -- then the jobs, ranked: RETURNING keeps no order, and a worker starts its batch in this
    -- one, FIFO within a priority.
    select 0::bigint as rank, null::bigint as id, null::text as queue, null::jsonb as payload, null::int as attempts,
           null::int as max_attempts, null::int as priority, null::text as group_key, null::float8 as created_ms,
           null::uuid as lease_token, null::int as timeout_ms, null::int as backoff_base_ms, null::int as backoff_max_ms,
           null::float8 as waited_ms, null::text as trace_context,
           coalesce(bool_or(b.at_limit), false) as at_limit, min(b.next_slot_ms) as next_slot_ms,
           (select count(*) from recorded) as recorded,
           (select json_agg(json_build_array(n.name, n.priority, extract(epoch from n.run_at) * 1000)) from next_bounds n) as bounds,
           (select coalesce(bool_or(n.expired), false) from next_bounds n) as expired_ahead ${due.news}
    from budget b
    union all
    select row_number() over (order by c.priority, c.run_at, c.id), c.id, c.queue, c.payload, c.attempts,
           c.max_attempts, c.priority, c.group_key, date_part('epoch', c.created_at) * 1000,
           c.lease_token, c.timeout_ms, c.backoff_base_ms, c.backoff_max_ms,
           (date_part('epoch', now()) - date_part('epoch', c.run_at)) * 1000, c.trace_context,
           null, null, null, null, null ${due.job}
    from claimed c
    order by rank`;
  const [news, ...claimed] = rows;
  // Field by field: a rest pattern copied each row through V8's slow generic path (7% of a tuned
  // drain's worker process, the largest item of its own code).
  const jobs = claimed.map((r): ClaimedJob => ({
    id: r.id, queue: r.queue, payload: r.payload, attempts: r.attempts, max_attempts: r.max_attempts, priority: r.priority,
    group_key: r.group_key, created_at: new Date(r.created_ms), lease_token: r.lease_token, timeout_ms: r.timeout_ms,
    backoff_base_ms: r.backoff_base_ms, backoff_max_ms: r.backoff_max_ms, waited_ms: r.waited_ms, trace_context: r.trace_context,
  }));
  const next = new Map((news?.bounds ?? []).map(([queue, priority, ms]) => [queue, { priority, runAt: new Date(ms) }]));
  return {
    jobs,
    bounds: next,
    expiredAhead: news?.expired_ahead ?? false,
    full: news?.at_limit ?? false,
    nextSlotInMs: news?.next_slot_ms ?? null,
    nextDueInMs: news?.next_due_ms ?? null,
  };
}

/**
 * The queues among `bounds` that have a claimable job behind their bound: it landed there after
 * the bound was set, unannounced (a producer's transaction that committed long after its insert).
 * This walks each queue's dead entries up to its bound, which the claims no longer do: it runs
 * every few seconds, beside the claims, never in their way.
 */
export async function queuesBehindBounds(sql: Sql, t: Tables, bounds: Array<[string, ClaimBound]>): Promise<string[]> {
  if (bounds.length === 0) return [];
  const rows = await sql<{ queue: string }[]>`
    select b.queue
    from unnest(${bounds.map(([queue]) => queue)}::text[], ${bounds.map(([, b]) => b.priority)}::int[],
                ${bounds.map(([, b]) => b.runAt.toISOString())}::text[]::timestamptz[]) as b(queue, priority, run_at)
    where exists (
      select from ${t.jobs} j
      where j.queue = b.queue and ${sql.unsafe(QUEUED)}
        and (j.priority, j.run_at, j.id) < (b.priority, b.run_at, 0))`;
  return rows.map((r) => r.queue);
}
