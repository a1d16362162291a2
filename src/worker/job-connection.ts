// The connection a transaction-mode slot runs its jobs' transactions on.
//
// Each slot owns one connection (a postgres.js instance with max: 1) instead of borrowing
// from a shared pool, for three reasons:
//
// 1. postgres.js 3.4.9 crashes the process when anything is written on a reserved connection
//    after its socket closed (porsager/postgres#1208, #1154: an uncatchable TypeError in
//    nextWrite). sql.begin() itself writes ROLLBACK when its callback rejects. With its own
//    instance the slot learns of the close synchronously (the onclose option runs inside
//    the driver's close handler, before any promise continuation), and from then on neither
//    pgq nor the handler writes on it: the handler's queries are refused, and the callback
//    never settles, so the driver never sends its ROLLBACK (the server has rolled back).
// 2. A connection that closed with a write still buffered is left unusable by the same
//    driver version (its write timer is never reset), so a dead slot connection is replaced
//    by a new instance rather than reconnected.
// 3. Knowing the backend's pid lets a timed-out attempt's running query be cancelled, so its
//    transaction rolls back now rather than whenever the query would have ended.
import type { Logger } from "pino";
import type { Sql, TransactionSql } from "postgres";
import { openConnection, type ConnectionSource } from "../db/connections.js";
import { PgqError } from "../errors.js";

export class ConnectionLostError extends PgqError {
  constructor() {
    super(
      "DATABASE_UNREACHABLE",
      "the job's database connection was lost and its transaction rolled back: the network failed, the server restarted "
        + "or ended the session (pg_terminate_backend, or idle_in_transaction_session_timeout if the handler paused inside "
        + "its transaction: do slow work before or after its queries)",
    );
  }
}

type Scope = (tx: TransactionSql) => Promise<unknown>;

export class JobConnection {
  private sql: Sql;
  private dead = false;
  private pid: number | undefined;
  /** Settles once the connection opened, with the error if it could not (behind a pooler: at once, unknown). */
  opened!: Promise<unknown>;
  /** Rejects the running transaction's result when the connection closes under it. */
  private onLost: ((error: Error) => void) | undefined;

  constructor(
    private readonly source: ConnectionSource,
    private readonly log: Logger,
    /** Behind a transaction-mode pooler the backend changes with each transaction: its pid is read in each. */
    private readonly pooled = false,
  ) {
    this.sql = this.open();
  }

  private open(): Sql {
    this.dead = false;
    this.pid = undefined;
    const sql = openConnection(this.source, this.log, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      onclose: () => {
        // A replaced instance closes later: that says nothing about its successor.
        if (this.sql !== sql) return;
        this.dead = true;
        this.onLost?.(new ConnectionLostError());
      },
    });
    // Once per connection, not per job: the pid a cancel needs. It also opens the connection now.
    this.opened = this.pooled
      ? Promise.resolve(undefined)
      : sql<{ pid: number }[]>`select pg_backend_pid() as pid`.then(([row]) => void (this.pid = row?.pid), (error: unknown) => error);
    return sql;
  }

  /**
   * Runs `fn` in a transaction on this slot's connection. If the connection dies, the result
   * rejects at once with ConnectionLostError, whatever the handler is awaiting (the driver may
   * never settle it: porsager/postgres#1186), and the connection is replaced before the next use.
   */
  async transaction<T>(fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    if (this.dead || this.startedReadOnly()) {
      void this.sql.end({ timeout: 0 }).catch(() => undefined);
      this.sql = this.open();
    }
    if (!this.pooled) return this.settleOnLoss(this.sql.begin((tx) => this.guarded(fn as Scope)(tx)) as Promise<T>);
    // The pid is forgotten before COMMIT: after it, the pooler may give that backend to another client.
    const scope: Scope = async (tx) => {
      [{ pid: this.pid }] = await tx<[{ pid: number }]>`select pg_backend_pid() as pid`;
      try {
        return await fn(tx);
      } finally {
        this.pid = undefined;
      }
    };
    return this.settleOnLoss(this.sql.begin((tx) => this.guarded(scope)(tx)) as Promise<T>);
  }

  private async settleOnLoss<T>(transaction: Promise<T>): Promise<T> {
    const lost = new Promise<never>((_, reject) => (this.onLost = reject));
    try {
      return await Promise.race([transaction, lost]);
    } finally {
      this.onLost = undefined;
    }
  }

  /**
   * A session keeps the default_transaction_read_only it started with (the server reports it,
   * and in_hot_standby, since PostgreSQL 14), so one opened while the database was read-only
   * would refuse every job after the database reverts: it is replaced before a job instead.
   */
  private startedReadOnly(): boolean {
    const { parameters } = this.sql as unknown as { parameters: Record<string, string | undefined> };
    return parameters.default_transaction_read_only === "on" || parameters.in_hot_standby === "on";
  }

  /** Cancels the statement running on this connection, if any, from another connection. */
  async cancelRunning(pool: Sql): Promise<void> {
    if (this.pid !== undefined && !this.dead) await pool`select pg_cancel_backend(${this.pid})`;
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 1 }).catch(() => undefined);
  }

  // Wraps a transaction scope: its queries go through the guard, and once the connection is
  // dead the scope never settles, so postgres.js writes nothing more on it.
  private guarded(fn: Scope): Scope {
    return async (tx) => {
      let result: unknown;
      try {
        result = await fn(this.guard(tx));
      } catch (error) {
        if (!this.dead) throw error;
      }
      // Whether the scope failed or finished, the driver's next write would be its ROLLBACK or COMMIT.
      if (this.dead) return new Promise(() => undefined);
      return result;
    };
  }

  private guard(tx: TransactionSql): TransactionSql {
    // Like a query of the driver's: chainable with execute(), and no unhandled rejection if the
    // caller drops it (complete.ts sends the completion unawaited).
    const refuse = () => {
      const refused = Promise.reject(new ConnectionLostError());
      refused.catch(() => undefined);
      return Object.assign(refused, { execute: () => refused });
    };
    return new Proxy(tx, {
      apply: (target, self, args) => (this.dead ? refuse() : Reflect.apply(target as never, self, args)),
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "unsafe" || prop === "file") {
          return (...args: unknown[]) => (this.dead ? refuse() : (value as (...a: unknown[]) => unknown).apply(target, args));
        }
        if (prop === "savepoint") {
          return (...args: unknown[]) => {
            if (this.dead) return refuse();
            const fn = args.pop() as Scope;
            return (value as (...a: unknown[]) => unknown).apply(target, [...args, this.guarded(fn)]);
          };
        }
        return value;
      },
    });
  }
}
