// Planner settings that pgq's statements make for the rest of their session, on the connections
// that run nothing but pgq's own statements (worker/shared-connections.ts). A setting made by a
// statement applies from the next one on, and the first statement on a new connection makes it
// again, so nothing is lost when the driver reconnects. Never behind a transaction-mode pooler,
// where a session setting would reach other clients of the server connection (and where nothing
// is prepared, so there is no plan to reuse).
//
// Every statement there is planned once and its plan reused (plan_cache_mode): left to choose,
// PostgreSQL planned the batched completion afresh at every call, since its generic plan's
// estimate looked dearer than the custom plans', and planning it (0.6 ms) cost more than running
// it for a few jobs (0.3 ms). A generic plan cannot see the values of its parameters, so
// statements that run there give their LIMITs as literals (limitOf below), and find jobs by key,
// which needs no estimate.
import type { Sql } from "postgres";

function ownSession(sql: Sql): boolean {
  // A transaction object has no options: pgq claims in a transaction only in its tests.
  return (sql.options as { prepare?: boolean } | undefined)?.prepare !== false;
}

/**
 * The claim: plan once per connection and reuse the plan (src/sql/claim.ts says why), and, as
 * for the statements below, reach pgq.jobs by index only: the claim's UPDATE finds its rows by
 * id. A fragment for a select list, after its first item.
 */
export function planOnce(sql: Sql) {
  return ownSession(sql) ? sql`, ${pgqPlans(sql)}` : sql``;
}

/**
 * Statements that find jobs by id: probe the primary key, never scan the heap. Under a held
 * snapshot the heap keeps every row version since (issue 17), and the planner, pricing a probe
 * of the equally bloated primary key at ~50 per id, reads the whole heap (1,722 pages at 135,000
 * dead tuples) for a batch of a few dozen ids. With sequential scans off, JIT is off too: a
 * statement that has no other path (a small table) is then costed past jit_above_cost. A select
 * of one row, to join. Completions and renewals, which run for every job, also reach pgq.jobs
 * by an index condition on the ids (`j.id = any(...)`), never by a join with the list: after an
 * ANALYZE that found few live rows, the planner walked the whole primary key once for such a
 * join, every entry a held snapshot keeps included (45,000 buffers to complete 5 jobs, at 60,000
 * dead tuples); and with the ids as both a condition and a join, it compared every row with
 * every id (a nested loop, a thousand by a thousand, which halved the tuned drain). What they
 * need per job (a lease token, a result) they look up by id in a jsonb object built once.
 */
export function probeByIndex(sql: Sql) {
  return ownSession(sql) ? sql`select ${pgqPlans(sql)}` : sql`select`;
}

/** A LIMIT as a literal: a plan reused on these connections cannot see the value of a parameter. */
export function limitOf(sql: Sql, rows: number) {
  return sql.unsafe(String(rows));
}

function pgqPlans(sql: Sql) {
  return sql`set_config('plan_cache_mode', 'force_generic_plan', false), set_config('enable_seqscan', 'off', false),
             set_config('jit', 'off', false)`;
}
