// The distinct queues of a table, found by a skip scan: one index descent per queue, instead of
// reading every row to group them. inspect() lists queues this way, and the history's list
// across queues (src/admin/history.ts) finds the queues whose walks it merges.
import type { Helper, PendingQuery, Row as PgRow, TransactionSql } from "postgres";

/**
 * A recursive CTE `name(queue)` of the distinct queues of `table`'s rows (aliased j) where
 * `where` holds, along an index led by queue, ending with a null row. Goes in a `with recursive`.
 */
export function skipScan(tx: TransactionSql, name: string, table: Helper<string>, where: PendingQuery<PgRow[]>) {
  return tx`
    ${tx(name)}(queue) as (
      (select j.queue from ${table} j where ${where} order by j.queue limit 1)
      union all
      select (select j.queue from ${table} j where ${where} and j.queue > w.queue order by j.queue limit 1)
      from ${tx(name)} w where w.queue is not null
    )`;
}
