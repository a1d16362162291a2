// Cancelling a transaction-mode handler's running query when its attempt is aborted.
//
// postgres.js sends the ROLLBACK of an aborted transaction behind whatever query the handler
// is still running on that connection, so a slow query would keep the transaction (and its
// locks and connection) alive long after the timeout. The handler therefore gets its
// transaction through this wrapper, which learns the connection's backend pid from the
// handler's own queries, at no extra round trip, so that the worker can cancel it.
import type { Sql, TransactionSql } from "postgres";

export interface TrackedTransaction {
  tx: TransactionSql;
  /** Cancels the statement running on the transaction's connection, if any. */
  cancelRunning(pool: Sql): Promise<void>;
}

type MaybeQuery = { state?: { pid?: number } } | undefined;

export function trackBackend(tx: TransactionSql): TrackedTransaction {
  const queries: MaybeQuery[] = [];
  const track = (result: unknown) => {
    if (result && typeof (result as { cancel?: unknown }).cancel === "function") queries.push(result as MaybeQuery);
    return result;
  };
  const proxy = new Proxy(tx, {
    apply: (target, self, args) => track(Reflect.apply(target as never, self, args)),
    get: (target, prop, receiver) => {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === "unsafe" || prop === "file") {
        return (...args: unknown[]) => track((value as (...a: unknown[]) => unknown).apply(target, args));
      }
      return value;
    },
  });
  return {
    tx: proxy,
    async cancelRunning(pool) {
      // postgres.js records the backend's pid on each query it sends (query.state).
      const pid = queries.find((q) => q?.state?.pid)?.state?.pid;
      if (pid) await pool`select pg_cancel_backend(${pid})`;
    },
  };
}
