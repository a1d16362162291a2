// Lease renewal: the heartbeat of a busy worker, one statement for all the jobs it runs.
import type { Sql } from "postgres";
import { probeByIndex } from "../db/session-plans.js";
import type { Tables } from "../db/tables.js";

/**
 * Extends the leases of the given jobs to leaseMs from now (database time). Fenced by the
 * lease token: a lease that was lost, and perhaps claimed again by another worker, is left
 * alone and its id is missing from the result, so the worker can abort that handler.
 */
export async function renewLeases(sql: Sql, t: Tables, ids: string[], tokens: string[], leaseMs: number): Promise<Set<string>> {
  const rows = await sql<{ id: string }[]>`
    with by_index as (${probeByIndex(sql)}),
    -- Tokens looked up by id, no join: sql/complete.ts says why.
    held as materialized (select jsonb_object(${ids}::bigint[]::text[], ${tokens}::text[]) as by_id)
    update ${t.jobs} j
    set locked_until = now() + ${leaseMs}::double precision * interval '1 millisecond'
    from held, by_index
    where j.id = any(${ids}::bigint[]) and j.lease_token = (held.by_id ->> j.id::text)::uuid
    returning j.id`;
  return new Set(rows.map((r) => r.id));
}
