// pgq.waiting_clients (migration 000015): the clients that wait for jobs to finish (q.waitFor()),
// so that statements finishing jobs announce them only while someone listens for that.
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";

/** A waiting client touches its row at least this often while it waits. */
export const TOUCH_EVERY_MS = 10_000;
/**
 * How long a row counts after its last touch. Well past TOUCH_EVERY_MS, so that a client that
 * waits again soon finds itself still counted: a finishing statement that began before the
 * touch committed does not announce, and its waiter learns of it at its next poll instead.
 */
const FRESH_MS = 60_000;
/** Rows of clients that died without saying goodbye are deleted by the next touch after this. */
const FORGOTTEN_MS = 3_600_000;

/** Counts `client` as waiting from now, and forgets clients long gone. */
export async function touchWaitingClient(sql: Sql, t: Tables, client: string): Promise<void> {
  await sql`
    with forgotten as (
      delete from ${t.waitingClients} w where w.seen_at < now() - ${FORGOTTEN_MS}::double precision * interval '1 millisecond'
    )
    insert into ${t.waitingClients} (client) values (${client})
    on conflict (client) do update set seen_at = now()`;
}

export async function forgetWaitingClient(sql: Sql, t: Tables, client: string): Promise<void> {
  await sql`delete from ${t.waitingClients} where client = ${client}`;
}

/** SQL: true while some client waits. Uncorrelated, so a statement evaluates it once. */
export function someoneWaits(sql: Sql, t: Tables) {
  return sql`exists (select from ${t.waitingClients} w where w.seen_at > now() - ${FRESH_MS}::double precision * interval '1 millisecond')`;
}
