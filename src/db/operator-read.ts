// The transaction an operator's read runs in (inspect, stats), so that it runs the plan it was
// written for on any PostgreSQL 15+ with default settings, whatever the table's statistics say.
//
// JIT is off: wherever PostgreSQL is built with LLVM (Debian, most managed services) it is on by
// default, and compiles any plan whose estimated cost passes jit_above_cost. Estimates for a table
// never analysed, or for a recursive walk, easily do, and the compilation alone then took ~600 ms
// for a read that runs in 2. It is set for the transaction by a statement of its own: set_config()
// inside the read itself would come after planning, which is when PostgreSQL decides.
//
// Sequential and bitmap scans are off: every read here walks an index in order and stops at a
// LIMIT, which neither can do. The planner cannot know that the rows a LIMIT wants come first in
// the index, and with statistics missing (a table not yet analysed after a bulk load reads
// `locked_until is not null` as 99.5% of its rows) or stale, it picked a sequential scan of a
// million jobs (3.6 s) for walks of a few hundred index entries.
import type { Sql, TransactionSql } from "postgres";
import { transaction } from "./transaction.js";

export async function operatorRead<T>(sql: Sql, read: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return transaction(sql, (tx) => asOperatorRead(tx, () => read(tx)), "read only");
}

/** Runs `read` with the settings above, set for the rest of `tx`: for a transaction that also writes. */
export async function asOperatorRead<T>(tx: TransactionSql, read: () => Promise<T>): Promise<T> {
  await tx`select set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true),
                  set_config('enable_bitmapscan', 'off', true)`;
  return read();
}
