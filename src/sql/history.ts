// pgq.history (migration 000011): finished jobs, written by the statement that finishes them
// (complete, fail, cancel, expire), and its partitions, one per day of purge_at, which
// maintenance makes ahead and drops whole once the day is past.
import type { Sql } from "postgres";
import { DEFAULT_RETENTION_MS } from "../admin/queues.js";
import { finishedChannel } from "../db/schema.js";
import type { Tables } from "../db/tables.js";
import { transaction } from "../db/transaction.js";
import { someoneWaits } from "./waiting-clients.js";

const DAY_MS = 24 * 3600 * 1000;
/** Days made ahead of each retention's purge day: maintenance may be away a while. */
const DAYS_AHEAD = 3;
/** Ids per notification: a payload holds at most 8000 bytes. */
const IDS_PER_NOTIFY = 400;

/**
 * The INSERT into pgq.history of the rows of the CTE `finished`, which has pgq.jobs' columns
 * (final values: last_error, errors) plus `state` and `result`. Each row is kept for its queue's
 * retention, read from pgq.queues at this moment: purge_at says in which day's partition it
 * lands. A queue whose retention is 0 keeps nothing. finished_at is the finishing statement's
 * own time: in transaction mode, now() would be when the job's transaction began.
 */
export function recordHistory(sql: Sql, t: Tables, finished: string) {
  return sql`
    -- Once per queue, not per row: a batch of a thousand completions is usually of one queue.
    with kept as materialized (
      select q.queue, ${retentionMs(sql, t, sql`q.queue`)} as ms from (select distinct queue from ${sql(finished)}) q
    )
    insert into ${t.history} (id, queue, state, payload, result, progress, priority, attempts, max_attempts, group_key,
                              last_error, errors, created_at, started_at, finished_at, worker, purge_at)
    select f.id, f.queue, f.state, f.payload, f.result, f.progress, f.priority, f.attempts, f.max_attempts, f.group_key,
           f.last_error, f.errors, f.created_at, f.started_at, statement_timestamp(), f.locked_by,
           now() + r.ms::double precision * interval '1 millisecond'
    from ${sql(finished)} f
    join kept r on r.queue = f.queue
    where r.ms > 0`;
}

/** The queue's retention in ms, as SQL over `queue`. */
export function retentionMs(sql: Sql, t: Tables, queue: ReturnType<Sql>) {
  return sql`coalesce((select s.retention_ms from ${t.queues} s where s.queue = ${queue}), ${DEFAULT_RETENTION_MS}::bigint)`;
}

/**
 * A SELECT that notifies waiters (q.waitFor()) of the ids in the CTE `finished`, a few hundred
 * per notification, delivered when the statement's transaction commits; only while some client
 * waits (sql/waiting-clients.ts), since a notification costs the statement a quarter of its
 * time and wakes every listening session of the database. A CTE that is only read runs only if
 * the main query reads it: each caller does, as `(select count(*) from <name>)`.
 */
export function notifyFinished(sql: Sql, t: Tables, finished: string) {
  return sql`
    select pg_notify(${finishedChannel(t.schema)}, string_agg(n.id::text, ','))
    from (select f.id, (row_number() over ()) / ${IDS_PER_NOTIFY} as chunk from ${sql(finished)} f) n
    where ${someoneWaits(sql, t)}
    group by n.chunk`;
}

/** The partition that holds rows purged on `day` (UTC midnight, ms since the epoch). */
function partitionName(day: number): string {
  return `history_${new Date(day).toISOString().slice(0, 10).replaceAll("-", "")}`;
}

function dayOfName(name: string): number | undefined {
  const m = /^history_(\d{4})(\d{2})(\d{2})$/.exec(name);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
}

/**
 * Makes the partitions that rows finished from now on land in (for each retention in use, its
 * purge day and a few after it), and drops every partition whose day is over: retention never
 * deletes a row. Made and dropped under a short lock_timeout, so that no completion ever waits
 * long on the locks they take. Safe in many processes at once. (The default partition is
 * normally empty; what it holds moves to its day's partition.)
 */
export async function maintainHistory(sql: Sql, t: Tables): Promise<{ created: string[]; dropped: string[] }> {
  const schema = t.schema;
  return transaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('pgq history partitions'), hashtext(${schema}))`;
    await tx`set local lock_timeout = '1s'`;
    const [clock] = await tx<{ now: Date; retentions: string[] }[]>`
      select now(), array(select distinct coalesce(s.retention_ms, ${DEFAULT_RETENTION_MS}::bigint)::text from ${t.queues} s
                          union select ${DEFAULT_RETENTION_MS}::bigint::text) as retentions`;
    const now = clock!.now.getTime();
    const existing = new Set(
      (await tx<{ name: string }[]>`
        select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = ${`${schema}.history`}::regclass`).map((r) => r.name),
    );
    const wanted = new Set<number>();
    for (const ms of clock!.retentions.map(Number).filter((ms) => ms > 0)) {
      const first = Math.floor((now + ms) / DAY_MS) * DAY_MS;
      for (let d = 0; d <= DAYS_AHEAD; d++) wanted.add(first + d * DAY_MS);
    }
    // Rows that landed in the default partition (their day had no partition yet) get one: a
    // partition cannot be attached over rows the default holds, and a past day's partition is
    // then dropped whole like any other.
    const defaultTable = tx(`${schema}.history_default`);
    const strayDays = async () => (await tx<{ day: Date }[]>`
      select distinct date_trunc('day', h.purge_at, 'UTC') as day from ${defaultTable} h`).map((r) => r.day.getTime());
    const missing = () => [...wanted].filter((day) => !existing.has(partitionName(day))).sort();
    for (const day of await strayDays()) wanted.add(day);
    const created: string[] = [];
    if (missing().length > 0) {
      // ATTACH alone lets statements go on with the partitions they saw before. An insert routed
      // that way would put its row in the default partition, whose constraint now refuses it, and
      // the completion would fail; a read planned that way, with a snapshot taken after this
      // commits, would miss the rows moved out of the default partition. So everything that
      // touches history waits instead (at most the lock_timeout, about once a day).
      await tx`lock table ${t.history} in access exclusive mode`;
      for (const day of await strayDays()) wanted.add(day);
    }
    for (const day of missing()) {
      const name = partitionName(day);
      const table = tx(`${schema}.${name}`);
      const [from, to] = [new Date(day), new Date(day + DAY_MS)];
      await tx`create table ${table} (like ${t.history} including defaults including constraints)`;
      await tx`
        with moved as (delete from ${defaultTable} h where h.purge_at >= ${from} and h.purge_at < ${to} returning h.*)
        insert into ${table} select * from moved`;
      await tx`alter table ${t.history} attach partition ${table}
               for values from (${tx.unsafe(`'${from.toISOString()}'`)}) to (${tx.unsafe(`'${to.toISOString()}'`)})`;
      existing.add(name);
      created.push(name);
    }
    const dropped: string[] = [];
    for (const name of existing) {
      const day = dayOfName(name);
      if (day === undefined || day + DAY_MS > now) continue;
      await tx`drop table ${tx(`${schema}.${name}`)}`;
      dropped.push(name);
    }
    return { created, dropped };
  });
}
