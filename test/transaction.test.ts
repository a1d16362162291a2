// pgq's own transactions on a shared pool survive the server ending their session mid-statement:
// the caller gets the error, and the process does not crash in the driver (porsager/postgres#1208).
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { isConnectionGone, transaction } from "../src/db/transaction.js";
import { freshDatabase } from "./helpers/db.js";
import { waitFor } from "./helpers/wait.js";

const { url } = await freshDatabase();

/**
 * The pool goes on, but postgres.js 3.4.9 keeps a lost connection's last server error and hands
 * it to the first statement of the connection that replaces it: that one statement fails too.
 */
async function afterLoss<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt === 3 || !isConnectionGone(error)) throw error;
    }
  }
}

/** A transaction waiting on a statement, ended from another session: it rejects, saying the connection is gone. */
async function killedWhileWaiting(sql: postgres.Sql, admin: postgres.Sql, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let settled = false;
    const waiting = transaction(sql, async (tx) => {
      await tx`select set_config('application_name', ${name}, true)`;
      await tx`select pg_sleep(30)`;
    }).finally(() => (settled = true));
    waiting.catch(() => undefined);
    let killed = false;
    await waitFor(async () => settled || (killed = (await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${name}`).length > 0),
      { timeoutMs: 10_000, what: `transaction ${name} to wait, and be ended` });
    await assert.rejects(waiting, (e) => isConnectionGone(e));
    // It may have ended before it waited: its first statement got the last loss's error (see afterLoss).
    if (killed) return;
    assert.ok(attempt < 3, `transaction ${name} never got to wait`);
  }
}

test("a session ended under a transaction rejects it, the pool goes on, and nothing is written on the dead connection", async () => {
  // One connection, so that each transaction runs on the one the last loss left behind.
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (let round = 0; round < 20; round++) {
      // The session ends itself, and, from another session, while the transaction waits on a statement.
      const own = transaction(sql, (tx) => tx`select pg_terminate_backend(pg_backend_pid())`);
      await assert.rejects(own, (e) => isConnectionGone(e));
      await afterLoss(() => sql`select 1`);
      await killedWhileWaiting(sql, admin, `doomed-${round}`);
      assert.deepEqual([...await afterLoss(() => transaction(sql, (tx) => tx`select ${round}::int as round`))], [{ round }]);
    }
    // An error that is not a lost connection still rolls back, as sql.begin() does.
    await sql`create table if not exists rolled (n int)`;
    await assert.rejects(transaction(sql, async (tx) => {
      await tx`insert into rolled values (1)`;
      await tx`select 1/0`;
    }), /division by zero/);
    assert.equal((await sql`select from rolled`).length, 0);
  } finally {
    // A connection lost under a transaction never finishes ending by itself in postgres.js 3.4.9: pgq ends its pools with a timeout.
    await Promise.all([sql.end({ timeout: 1 }), admin.end()]);
  }
});
