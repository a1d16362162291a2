// The worker registry (pgq.workers) and the session markers that say which workers are alive:
// each client with workers holds a session-level advisory lock, WORKER_LOCK_CLASS and its own
// random key, on a connection of its own (src/worker/marker.ts). The lock ends with the session,
// so a killed process's workers are seen dead as soon as PostgreSQL closes their connection.
// The same session may also hold the lead of maintenance, or the deputy's place (src/maintenance/maintenance.ts).
import type { PendingQuery, Row, Sql } from "postgres";
import type { Tables } from "../db/tables.js";

/** The first key of every pgq worker lock: 'pgq!' as a 32-bit integer. */
export const WORKER_LOCK_CLASS = 0x70677121;

export interface WorkerRegistration {
  name: string;
  host: string;
  pid: number;
  queues: string[];
  mode: string;
  concurrency: number;
}

/** The lock keys held now by any session of this database: the live workers' markers. */
export function heldWorkerLocks(sql: Sql): PendingQuery<Row[]> {
  // Two-int advisory locks show as classid = first key, objid = second, objsubid = 2.
  return sql`
    select l.objid::bigint as lock_key
    from pg_locks l
    where l.locktype = 'advisory' and l.classid = ${WORKER_LOCK_CLASS}::int::oid and l.objsubid = 2 and l.granted
      and l.database = (select oid from pg_database where datname = current_database())`;
}

/** Takes the marker; false if a session holds that key already. Runs on the marker's session. */
export async function takeWorkerLock(sql: Sql, key: number): Promise<boolean> {
  const [row] = await sql<{ taken: boolean }[]>`select pg_try_advisory_lock(${WORKER_LOCK_CLASS}::int, ${key}::int) as taken`;
  return row!.taken;
}

/**
 * Takes the lead of maintenance for this schema, if no session holds it, and otherwise the place
 * of its deputy, the one client that asks for the lead every second (src/maintenance/): both are
 * session-level locks on the marker's session, so each goes with its holder's session (its
 * process died, or its marker connection was lost) and another client takes it. A deputy that
 * takes the lead gives its place up in the same statement.
 */
export async function takeMaintenanceLead(sql: Sql, schema: string, deputy: boolean): Promise<{ lead: boolean; deputy: boolean }> {
  // OFFSET 0 keeps the subquery whole, so that the lead is asked for once, and before the deputy's place.
  const [row] = await sql<{ lead: boolean; deputy: boolean }[]>`
    select l.taken as lead,
           case when l.taken and ${deputy} then not pg_advisory_unlock(hashtext('pgq maintenance deputy'), hashtext(${schema}))
                when l.taken then false
                when ${deputy} then true
                else pg_try_advisory_lock(hashtext('pgq maintenance deputy'), hashtext(${schema})) end as deputy
    from (select pg_try_advisory_lock(hashtext('pgq maintenance'), hashtext(${schema})) as taken offset 0) l`;
  return row!;
}

/** Registers workers under the marker's key, or moves them to a new key after a reconnect. */
export async function registerWorkers(sql: Sql, t: Tables, key: number, workers: WorkerRegistration[]): Promise<void> {
  if (workers.length === 0) return;
  await sql`
    insert into ${t.workers} (name, host, pid, queues, mode, concurrency, lock_key)
    select w.name, w.host, w.pid, array(select jsonb_array_elements_text(w.queues)), w.mode, w.concurrency, ${key}
    from jsonb_to_recordset(${sql.json(workers as never)}::jsonb)
      as w(name text, host text, pid int, queues jsonb, mode text, concurrency int)
    on conflict (name) do update set lock_key = excluded.lock_key, last_seen_at = now()`;
}

export async function unregisterWorker(sql: Sql, t: Tables, name: string): Promise<void> {
  await sql`delete from ${t.workers} where name = ${name}`;
}

/** Says the marker's session still answers (last_seen_at is for operators). */
export async function touchWorkers(sql: Sql, t: Tables, key: number): Promise<void> {
  await sql`update ${t.workers} set last_seen_at = now() where lock_key = ${key}`;
}

/** Rows of workers dead for a while whose jobs were all rescued or finished. */
export async function forgetDeadWorkers(sql: Sql, t: Tables): Promise<number> {
  const rows = await sql`
    with held as materialized (${heldWorkerLocks(sql)})
    delete from ${t.workers} w
    where w.last_seen_at < now() - interval '1 minute'
      and w.lock_key not in (select lock_key from held)
      and not exists (select from ${t.jobs} j where j.locked_by = w.name and j.locked_until is not null)
    returning w.name`;
  return rows.length;
}
