// Keeps pgq's statements on a postgres.js pool from outnumbering its connections.
//
// postgres.js 3.4.9 sends a statement that finds every connection of its pool busy down a busy
// one, behind the statements already there. From then on, as long as some connection stays
// busy, each statement leaves a hole in the driver's list of busy connections, and every
// statement's bookkeeping scans the whole list: a pool kept saturated gets slower with every
// statement it ever ran, for good. Measured with `select 1` on a pool of 4 with 12 callers:
// 30,337 statements/s in the first 50,000, 5,032 in the eighth (porsager/postgres#747 reports
// the symptom). The benchmark's producer, 64 enqueues in flight on q.sql's 10 connections,
// fell behind after about 200 s that way, whatever the queue's workers did. With no more of
// pgq's statements in flight than the pool has connections, none is ever queued behind
// another, and the rest wait here, in a queue whose every step costs the same.
import type { Sql } from "postgres";

export class PoolGate {
  private readonly size: number;
  private inFlight = 0;
  private waiting: Array<() => void> = [];
  private head = 0;

  constructor(private readonly pool: Sql) {
    this.size = pool.options.max;
  }

  /** Runs `work`, one statement or transaction on `executor`: through the gate if that is the pool, at once if it is a caller's transaction. */
  run<T>(executor: unknown, work: () => Promise<T>): Promise<T> {
    return executor === this.pool ? this.pass(work) : work();
  }

  private async pass<T>(work: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.inFlight++;
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  /** Hands the slot to the first waiter, if any: inFlight stays the same then. */
  private release(): void {
    if (this.head === this.waiting.length) {
      this.inFlight--;
      this.waiting = [];
      this.head = 0;
      return;
    }
    const next = this.waiting[this.head++]!;
    // While some always wait, drop what was taken once it is most of the array.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    next();
  }
}
