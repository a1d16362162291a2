// pgq's own short transactions on a shared pool (history partitions, operators' reads,
// migrations, the CLI's enqueue).
//
// postgres.js 3.4.9 crashes the process with an uncatchable TypeError in nextWrite when anything
// is written on a connection after its socket closed (porsager/postgres#1208), and sql.begin()
// writes ROLLBACK when its callback rejects. So when the server ends the session in the middle
// of the transaction (a restart, pg_terminate_backend, DROP DATABASE ... WITH (FORCE)), the
// callback must not reject: it never settles, the driver never writes its ROLLBACK (the server
// has rolled the transaction back already), and the caller gets the error from here instead.
// The worker's job transactions have their own guard, which also learns of the close between
// statements (src/worker/job-connection.ts).
import type { Sql, TransactionSql } from "postgres";

/** The driver's own codes for a connection that closed or was closed, and the socket's. */
const GONE_CODES = new Set(["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "CONNECTION_ENDED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/** True if the error says the connection is gone: nothing more may be written on it. */
export function isConnectionGone(error: unknown): boolean {
  const { code, severity } = (error ?? {}) as { code?: unknown; severity?: unknown };
  return (typeof code === "string" && GONE_CODES.has(code)) || severity === "FATAL" || severity === "PANIC";
}

/** sql.begin(), except that a connection lost under it rejects the result without the driver writing on it again. */
export function transaction<T>(sql: Sql, fn: (tx: TransactionSql) => Promise<T>, mode = ""): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    sql
      .begin(mode, async (tx) => {
        try {
          return await fn(tx);
        } catch (error) {
          if (!isConnectionGone(error)) throw error;
          reject(error);
          return new Promise<never>(() => undefined);
        }
      })
      .then((result) => resolve(result as T), reject);
  });
}
