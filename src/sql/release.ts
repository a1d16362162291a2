// Release: a worker that is shutting down hands its unfinished jobs back to the queue.
import type { Sql } from "postgres";
import { readyChannel } from "../db/schema.js";
import type { Tables } from "../db/tables.js";

/**
 * Makes the given jobs claimable again at once without spending an attempt: the attempt was
 * interrupted by the worker's own shutdown, not by the job. Fenced by the lease token, so a
 * job whose lease was already lost is left to whoever holds it now. Workers are told, so that they
 * claim them at once and from their place in the queue.
 */
/**
 * Tells every process's workers that jobs of these queues are claimable again where they were,
 * behind the claim bounds (src/worker/claim-bounds.ts): one `queue\nrewind` per queue. For
 * rescued jobs and resumed queues; a release says so in its own statement, below.
 */
export async function announceRequeued(sql: Sql, t: Tables, queues: string[]): Promise<void> {
  if (queues.length === 0) return;
  await sql`select pg_notify(${readyChannel(t.schema)}, q || E'\\nrewind') from unnest(${queues}::text[]) q`;
}

export async function releaseJobs(sql: Sql, t: Tables, ids: string[], tokens: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await sql<{ id: string }[]>`
    with released as (
      update ${t.jobs} j
      set attempts = j.attempts - 1, locked_by = null, locked_until = null, lease_token = null
      from unnest(${ids}::bigint[], ${tokens}::uuid[]) as held(id, token)
      where j.id = held.id and j.lease_token = held.token
      returning j.id, j.queue),
    -- They keep their place, behind other workers' claim bounds (src/worker/claim-bounds.ts).
    announced as (select pg_notify(${readyChannel(t.schema)}, r.queue || E'\\nrewind') from (select distinct queue from released) r)
    select r.id from released r, (select count(*) from announced) a`;
  return new Set(rows.map((r) => r.id));
}
