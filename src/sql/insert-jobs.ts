// The one INSERT INTO pgq.jobs. Enqueue (below), publish (admin/topics.ts), cron ticks
// (sql/advance-schedule.ts) and dead-job retry (admin/dead-jobs.ts) all insert through this
// file, which owns the columns a job is written with and the SQL that turns its options into
// their values. Each caller supplies its row source (payloads, subscribed queues, a schedule,
// dead jobs) and what it returns. Statements are SQL text and parameters (db/statement.ts), so
// they can run in any driver's transaction. The SQL function pgq.enqueue (migration 000006) is
// the one other insert: it lives in the database.
import type { Executor } from "../db/executor.js";
import { EMPTY, execute, qualified, sqlText, type Fragment } from "../db/statement.js";
import type { Tables } from "../db/tables.js";

/** A job's options, checked (src/enqueue.ts), with every default filled in. */
export interface JobSettings {
  priority: number;
  /** null: now, plus delayMs. */
  runAt: Date | null;
  delayMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  timeoutMs: number | null;
  dedupeKey: string | null;
  groupKey: string | null;
  /** A W3C traceparent: the enqueuer's span, which the job's process spans continue (telemetry/tracing.ts). */
  traceContext: string | null;
  /** null: none, unless ttlMs. */
  expiresAt: Date | null;
  /** Expires this long after run_at. */
  ttlMs: number | null;
}

export interface JobRows {
  /** The queue and payload of each job: SQL over the row source, or parameters. */
  queue: Fragment;
  payload: Fragment;
  /** Where the rows come from: a FROM clause, with WHERE and ORDER BY as needed. None for one job. */
  from?: Fragment;
  /** The same for every job of the statement. */
  settings: JobSettings;
}

/**
 * New jobs: `insert ... select`, to which the caller appends RETURNING. Jobs without a dedupe
 * key (nearly all) take a plain INSERT. Only a dedupe key needs ON CONFLICT, which makes every
 * row a speculative insertion (a lock and an extra WAL record per row: a fifth of a 1000-job
 * batch's time when every batch paid it). A conflicting job is not inserted and returns no id:
 * the caller looks up its live twin.
 */
export function insertNewJobs(schema: string, rows: JobRows): Fragment {
  const s = rows.settings;
  const runAt = sqlText`coalesce(${s.runAt}::timestamptz, now() + ${s.delayMs}::double precision * interval '1 millisecond')`;
  return sqlText`
    insert into ${qualified(schema, "jobs")} (queue, payload, priority, run_at, max_attempts, backoff_base_ms,
                                              backoff_max_ms, timeout_ms, dedupe_key, group_key, trace_context, expires_at)
    select ${rows.queue}, ${rows.payload}, ${s.priority}::integer, ${runAt},
           ${s.maxAttempts}::integer, ${s.backoffBaseMs}::integer, ${s.backoffMaxMs}::integer, ${s.timeoutMs}::integer,
           ${s.dedupeKey}::text, ${s.groupKey}::text, ${s.traceContext}::text,
           coalesce(${s.expiresAt}::timestamptz, ${runAt} + ${s.ttlMs}::double precision * interval '1 millisecond')
    ${rows.from ?? EMPTY}
    ${s.dedupeKey === null ? EMPTY : sqlText`on conflict (queue, dedupe_key) where dedupe_key is not null do nothing`}`;
}

/**
 * Dead jobs coming back, from `from`, whose rows (pgq.dead_jobs rows) are named `dead`: each with
 * its own options, id and error history, ready now, with all its attempts ahead of it. The
 * same columns as insertNewJobs, plus the history and trace context, and no ON CONFLICT: a job that would break a
 * dedupe key's promise must fail the statement, not vanish from both tables.
 */
export function reinsertDeadJobs(schema: string, from: Fragment): Fragment {
  return sqlText`
    insert into ${qualified(schema, "jobs")} (queue, payload, priority, run_at, max_attempts, backoff_base_ms,
                                              backoff_max_ms, timeout_ms, dedupe_key, group_key,
                                              trace_context, id, last_error, errors, created_at)
    overriding system value
    select dead.queue, dead.payload, dead.priority, now(), dead.max_attempts, dead.backoff_base_ms,
           dead.backoff_max_ms, dead.timeout_ms, dead.dedupe_key, dead.group_key,
           dead.trace_context, dead.id, dead.last_error, dead.errors, dead.created_at
    ${from}`;
}

/**
 * Enqueue: inserts the jobs and returns their ids in payload order, in one statement and one
 * round trip whatever the batch size. Payloads arrive serialised: each travels as text, cast
 * ::text first because typed as jsonb, postgres.js would serialise the JSON text once more.
 */
export async function insertJobs(sql: Executor, t: Tables, queue: string, texts: string[], s: JobSettings): Promise<string[]> {
  if (texts.length === 0) return [];
  if (s.dedupeKey !== null) return insertDeduped(sql, t.schema, queue, texts, s, s.dedupeKey);
  if (texts.length === 1) {
    const [row] = await execute<{ id: string }>(sql, sqlText`
      ${insertNewJobs(t.schema, { queue: sqlText`${queue}::text`, payload: sqlText`${texts[0]!}::text::jsonb`, settings: s })}
      returning id`);
    return [row!.id];
  }
  // A batch travels as one JSON array. Ids come from the identity in insertion order, which the
  // ORDER BY makes payload order. One text value rather than a row per job: parsing a thousand
  // rows was half the client's CPU time, and a text list needs no array parser (a caller's pool
  // may run without fetch_types).
  const [row] = await execute<{ ids: string }>(sql, sqlText`
    with inserted as (
      ${insertNewJobs(t.schema, { queue: sqlText`${queue}::text`, payload: sqlText`p.payload`, from: payloadRows(texts), settings: s })}
      returning id
    )
    select array_to_string(array_agg(id order by id), ',') as ids from inserted`);
  return row!.ids.split(",");
}

function payloadRows(texts: string[]): Fragment {
  return sqlText`from jsonb_array_elements(${`[${texts.join(",")}]`}::text::jsonb) with ordinality as p(payload, n) order by p.n`;
}

/** With a dedupe key, a job that already has a live twin is not inserted and the twin's id is returned instead. */
async function insertDeduped(sql: Executor, schema: string, queue: string, texts: string[], s: JobSettings, dedupeKey: string): Promise<string[]> {
  // A twin inserted by a transaction that commits while this statement runs is invisible to
  // the statement's snapshot: then no id comes back, and a second try sees it.
  for (let attempt = 0; ; attempt++) {
    const rows = await execute<{ id: string }>(sql, sqlText`
      with inserted as (
        ${insertNewJobs(schema, { queue: sqlText`${queue}::text`, payload: sqlText`p.payload`, from: payloadRows(texts), settings: s })}
        returning id
      )
      select id from inserted
      union all
      select id from ${qualified(schema, "jobs")}
      where queue = ${queue}::text and dedupe_key = ${dedupeKey}::text
        and not exists (select from inserted)
      order by id`);
    if (rows.length === texts.length) return rows.map((r) => r.id);
    // Every payload maps to the one live job.
    if (rows.length > 0) return texts.map(() => rows[0]!.id);
    if (attempt >= 3) throw new Error(`enqueue into ${queue} returned ${rows.length} ids for ${texts.length} jobs`);
  }
}
