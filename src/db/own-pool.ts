// A pool that pgq opened for its own statements (a worker's claims and completions, the
// maintenance tasks), and so may replace.
//
// It is replaced when its statements stop settling: after a connection dies with a write still
// buffered, postgres.js 3.4.9 never flushes that connection again (its write timer is not
// reset), so its later statements hang until their bound; a fresh pool does not have it. And
// when its sessions are read-only: a session keeps the default_transaction_read_only it started
// with, so sessions opened while the database was read-only would refuse writes after it reverts.
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { DatabaseTimeoutError } from "../errors.js";
import { isReadOnlyError } from "./outage.js";

export class OwnPool {
  private current: Sql;

  constructor(
    private readonly open: () => Sql,
    private readonly log: Logger,
  ) {
    this.current = open();
  }

  /** The pool to use now: read it for each statement, as it may have been replaced since. */
  get sql(): Sql {
    return this.current;
  }

  /** After a statement failed: replaces the pool if the error says that it is stuck, as above. */
  recoverFrom(error: unknown): void {
    if (error instanceof DatabaseTimeoutError) this.replace("a statement did not settle", 0);
    // Read-only sessions still answer: their statements may finish. Destroying a connection
    // while it fetches types is an unhandled rejection in postgres.js 3.4.9 (porsager/postgres#1192).
    else if (isReadOnlyError(error)) this.replace("its sessions were read-only", 5);
  }

  /** Opens a fresh pool for the next statements; the old one gets `graceSeconds` to finish. */
  private replace(why: string, graceSeconds: number): void {
    const old = this.current;
    this.current = this.open();
    void old.end({ timeout: graceSeconds }).catch(() => undefined);
    this.log.warn(`replaced a connection pool: ${why}`);
  }

  async end(): Promise<void> {
    await this.current.end({ timeout: 5 });
  }
}
