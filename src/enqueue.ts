// Enqueue: one INSERT for any number of jobs, on the pool or in the caller's transaction.
import type { Sql, TransactionSql } from "postgres";
import { ValidationError } from "./errors.js";
import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "./job-defaults.js";
import type { Tables } from "./db/tables.js";
import type { EnqueueOptions } from "./types.js";
import { assertDate, assertInteger, assertKey, assertQueueName, MAX_DELAY_MS, serializePayload } from "./validate.js";

interface JobSettings {
  priority: number;
  runAt: Date | null;
  delayMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  timeoutMs: number | null;
  dedupeKey: string | null;
  groupKey: string | null;
}

/** Checks the queue name, every payload and every option; throws ValidationError before any SQL. */
export function prepareEnqueue(queue: unknown, payloads: unknown[], options: EnqueueOptions, maxPayloadBytes: number) {
  assertQueueName(queue);
  if (options === null || typeof options !== "object") {
    throw new ValidationError("INVALID_OPTION", "enqueue options must be an object");
  }
  const texts = payloads.map((p) => serializePayload(p, maxPayloadBytes));
  const { priority = DEFAULT_PRIORITY, maxAttempts = DEFAULT_MAX_ATTEMPTS, backoff = {}, timeoutMs, dedupeKey, groupKey } = options;
  assertInteger(priority, "priority", -(2 ** 31));
  assertInteger(maxAttempts, "maxAttempts", 1);
  const { baseMs = DEFAULT_BACKOFF.baseMs, maxMs = Math.max(DEFAULT_BACKOFF.maxMs, baseMs) } = backoff;
  assertInteger(baseMs, "backoff.baseMs", 0);
  assertInteger(maxMs, "backoff.maxMs", baseMs);
  if (timeoutMs !== undefined) assertInteger(timeoutMs, "timeoutMs", 1);
  if (dedupeKey !== undefined) assertKey(dedupeKey, "dedupeKey");
  if (groupKey !== undefined) assertKey(groupKey, "groupKey");
  if (options.runAt !== undefined && options.delayMs !== undefined) {
    throw new ValidationError("INVALID_OPTION", "give runAt or delayMs, not both");
  }
  if (options.runAt !== undefined) assertDate(options.runAt, "runAt");
  if (options.delayMs !== undefined) assertInteger(options.delayMs, "delayMs", 0, MAX_DELAY_MS);
  const settings: JobSettings = {
    priority,
    runAt: options.runAt ?? null,
    delayMs: options.delayMs ?? 0,
    maxAttempts,
    backoffBaseMs: baseMs,
    backoffMaxMs: maxMs,
    timeoutMs: timeoutMs ?? null,
    dedupeKey: dedupeKey ?? null,
    groupKey: groupKey ?? null,
  };
  return { queue, texts, settings };
}

/**
 * Inserts the jobs and returns their ids in payload order, in one statement and one round trip
 * whatever the batch size. Jobs without a dedupe key (nearly all) take a plain INSERT: one job
 * is a VALUES row, a batch travels as one JSON array. Only a dedupe key needs ON CONFLICT,
 * which makes every row a speculative insertion (a lock and an extra WAL record per row: a
 * fifth of a 1000-job batch's time when every batch paid it).
 */
export async function insertJobs(sql: Sql | TransactionSql, t: Tables, queue: string, texts: string[], s: JobSettings): Promise<string[]> {
  if (texts.length === 0) return [];
  if (s.dedupeKey !== null) return insertDeduped(sql, t, queue, texts, s, s.dedupeKey);
  if (texts.length === 1) {
    const [row] = await sql<{ id: string }[]>`
      -- ::text first: typed as jsonb, postgres.js would serialise the JSON text once more.
      insert into ${t.jobs} (queue, payload, priority, run_at, max_attempts, backoff_base_ms,
                             backoff_max_ms, timeout_ms, group_key)
      values (${queue}::text, ${texts[0]!}::text::jsonb, ${s.priority}::integer,
              coalesce(${s.runAt}::timestamptz, now() + ${s.delayMs}::double precision * interval '1 millisecond'),
              ${s.maxAttempts}::integer, ${s.backoffBaseMs}::integer, ${s.backoffMaxMs}::integer,
              ${s.timeoutMs}::integer, ${s.groupKey}::text)
      returning id`;
    return [row!.id];
  }
  // Ids come from the identity in insertion order, which the ORDER BY makes payload order. One
  // text value rather than a row per job: parsing a thousand rows was half the client's CPU
  // time, and a text list needs no array parser (a caller's pool may run without fetch_types).
  const [{ ids }] = await sql<[{ ids: string }]>`
    with inserted as (
      insert into ${t.jobs} (queue, payload, priority, run_at, max_attempts, backoff_base_ms,
                             backoff_max_ms, timeout_ms, group_key)
      select ${queue}::text, p.payload, ${s.priority}::integer,
             coalesce(${s.runAt}::timestamptz, now() + ${s.delayMs}::double precision * interval '1 millisecond'),
             ${s.maxAttempts}::integer, ${s.backoffBaseMs}::integer, ${s.backoffMaxMs}::integer,
             ${s.timeoutMs}::integer, ${s.groupKey}::text
      from jsonb_array_elements(${`[${texts.join(",")}]`}::text::jsonb) with ordinality as p(payload, n)
      order by p.n
      returning id
    )
    select array_to_string(array_agg(id order by id), ',') as ids from inserted`;
  return ids.split(",");
}

/** With a dedupe key, a job that already has a live twin is not inserted and the twin's id is returned instead. */
async function insertDeduped(sql: Sql | TransactionSql, t: Tables, queue: string, texts: string[], s: JobSettings, dedupeKey: string): Promise<string[]> {
  const payloads = `[${texts.join(",")}]`;
  // A twin inserted by a transaction that commits while this statement runs is invisible to
  // the statement's snapshot: then no id comes back, and a second try sees it.
  for (let attempt = 0; ; attempt++) {
    const rows = await sql<{ id: string }[]>`
      with inserted as (
        insert into ${t.jobs} (queue, payload, priority, run_at, max_attempts, backoff_base_ms,
                               backoff_max_ms, timeout_ms, dedupe_key, group_key)
        select ${queue}::text, p.payload, ${s.priority}::integer,
               coalesce(${s.runAt}::timestamptz, now() + ${s.delayMs}::double precision * interval '1 millisecond'),
               ${s.maxAttempts}::integer, ${s.backoffBaseMs}::integer, ${s.backoffMaxMs}::integer, ${s.timeoutMs}::integer,
               ${dedupeKey}::text, ${s.groupKey}::text
        from jsonb_array_elements(${payloads}::text::jsonb) with ordinality as p(payload, n)
        order by p.n
        on conflict (queue, dedupe_key) where dedupe_key is not null do nothing
        returning id
      )
      select id from inserted
      union all
      select id from ${t.jobs}
      where queue = ${queue}::text and dedupe_key = ${dedupeKey}::text
        and not exists (select from inserted)
      order by id`;
    if (rows.length === texts.length) return rows.map((r) => r.id);
    // Every payload maps to the one live job.
    if (rows.length > 0) return texts.map(() => rows[0]!.id);
    if (attempt >= 3) throw new Error(`enqueue into ${queue} returned ${rows.length} ids for ${texts.length} jobs`);
  }
}
