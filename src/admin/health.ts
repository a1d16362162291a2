// What keeps a queue table healthy, read from PostgreSQL's own statistics: the warnings the
// dashboard shows and the CLI can print. A queue deletes every row it finishes, so it lives on
// VACUUM reclaiming them; anything that holds the xmin horizon back (a transaction left open, an
// abandoned replication slot) keeps every dead row, and the claim walks ever more of them.
import type { Sql } from "postgres";
import { operatorRead } from "../db/operator-read.js";

/** Something holding back the xmin horizon: VACUUM cannot remove rows deleted after it. */
export interface XminHolder {
  kind: "transaction" | "replication slot";
  /** The backend's pid (a transaction), or the slot's name. */
  who: string;
  /** Transactions the horizon is behind by. */
  xidAge: number;
  /** How long the transaction has been open; null for a slot (PostgreSQL does not record it before 17). */
  heldForMs: number | null;
  /** A transaction's state and the start of its query; a slot's plugin and whether it is active. */
  detail: string;
}

export interface JobsTableHealth {
  liveTuples: number;
  deadTuples: number;
  lastAutovacuumAt: Date | null;
  /** Dead rows are many more than live ones: the claim's index walks skip over them. */
  deadTuplesPiling: boolean;
  /** Autovacuum should have run (the table asks for it after 1,000 dead rows) and has not lately. */
  autovacuumBehind: boolean;
}

export interface Health {
  xminHolders: XminHolder[];
  jobsTable: JobsTableHealth | null;
}

/** A transaction open this long while holding the horizon is worth an operator's look. */
export const XMIN_HELD_WARN_MS = 60_000;
/** Below this, dead rows are autovacuum's ordinary backlog, whatever the live count. */
const DEAD_TUPLES_FLOOR = 10_000;
/** pgq.jobs sets autovacuum_vacuum_threshold = 1000 (migration 000004): ten times that is a miss. */
const AUTOVACUUM_BEHIND_DEAD = 10_000;
const AUTOVACUUM_BEHIND_MS = 10 * 60_000;

export async function readHealth(sql: Sql, schema: string, options: { xminHeldWarnMs?: number } = {}): Promise<Health> {
  const { xminHeldWarnMs = XMIN_HELD_WARN_MS } = options;
  return operatorRead(sql, async (tx) => {
    // One round trip: the three reads are sent together. Other sessions only: this read's own
    // transaction holds an xmin too.
    const [transactions, slots, [table]] = await Promise.all([tx<{ pid: number; xid_age: number; held_ms: string | null; state: string | null; query: string | null }[]>`
      select pid, age(backend_xmin) as xid_age,
             round(extract(epoch from now() - xact_start) * 1000)::bigint as held_ms,
             state, left(query, 120) as query
      from pg_stat_activity
      where backend_xmin is not null and pid <> pg_backend_pid()
        and xact_start <= now() - ${xminHeldWarnMs}::double precision * interval '1 millisecond'
      order by age(backend_xmin) desc
      limit 5`,
    tx<{ slot_name: string; xid_age: number; active: boolean; plugin: string | null }[]>`
      select slot_name, greatest(age(xmin), age(catalog_xmin)) as xid_age, active, plugin
      from pg_replication_slots
      where xmin is not null or catalog_xmin is not null
      order by 2 desc
      limit 5`,
    tx<{ n_live_tup: string; n_dead_tup: string; last_autovacuum: Date | null; behind_ms: string | null }[]>`
      select n_live_tup, n_dead_tup, last_autovacuum,
             round(extract(epoch from now() - greatest(last_autovacuum, last_vacuum)) * 1000)::bigint as behind_ms
      from pg_stat_user_tables where relid = to_regclass(${`${schema}.jobs`})`,
    ]);
    const xminHolders: XminHolder[] = [
      ...transactions.map((r) => ({
        kind: "transaction" as const,
        who: `pid ${r.pid}`,
        xidAge: Number(r.xid_age),
        heldForMs: r.held_ms === null ? null : Number(r.held_ms),
        detail: `${r.state ?? "unknown state"}: ${r.query ?? ""}`,
      })),
      ...slots.map((r) => ({
        kind: "replication slot" as const,
        who: r.slot_name,
        xidAge: Number(r.xid_age),
        heldForMs: null,
        detail: `${r.plugin ?? "physical"}, ${r.active ? "active" : "inactive"}`,
      })),
    ];
    if (!table) return { xminHolders, jobsTable: null };
    const live = Number(table.n_live_tup);
    const dead = Number(table.n_dead_tup);
    const sinceVacuumMs = table.behind_ms === null ? null : Number(table.behind_ms);
    return {
      xminHolders,
      jobsTable: {
        liveTuples: live,
        deadTuples: dead,
        lastAutovacuumAt: table.last_autovacuum,
        deadTuplesPiling: dead > DEAD_TUPLES_FLOOR && dead > live,
        autovacuumBehind: dead > AUTOVACUUM_BEHIND_DEAD && (sinceVacuumMs === null || sinceVacuumMs > AUTOVACUUM_BEHIND_MS),
      },
    };
  });
}
