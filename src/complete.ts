// Completion: a finished job leaves pgq.jobs. Both statements are fenced by the lease token,
// so a worker whose lease was lost (and whose job may have been claimed again) cannot
// complete it.
import type { Sql, TransactionSql } from "postgres";
import type { Tables } from "./tables.js";

/** Transaction mode: inside the handler's transaction, so the handler's writes and the
 *  completion commit together or not at all. False if the lease was lost. */
export async function completeInTransaction(tx: TransactionSql, t: Tables, id: string, token: string): Promise<boolean> {
  const done = await tx`delete from ${t.jobs} where id = ${id} and lease_token = ${token}`;
  return done.count === 1;
}

/** Lease mode: many completions in one statement. Returns the ids that were still held. */
export async function completeJobs(sql: Sql, t: Tables, ids: string[], tokens: string[]): Promise<Set<string>> {
  const rows = await sql<{ id: string }[]>`
    delete from ${t.jobs} j
    using unnest(${ids}::bigint[], ${tokens}::uuid[]) as done(id, token)
    where j.id = done.id and j.lease_token = done.token
    returning j.id`;
  return new Set(rows.map((r) => r.id));
}
