// q.waitFor(): callers waiting for jobs to finish, all of a client's on one LISTEN connection.
//
// Statements that finish jobs notify their ids (sql/history.ts notifyFinished) while some client
// says it waits (sql/waiting-clients.ts): this one says so before its first read, and again
// while it waits. A notification for an id someone waits for triggers one read of how those jobs
// ended, shared by every id that arrived meanwhile. Notifications can be missed (the connection
// drops, a pooler in transaction mode never delivers them, a statement that began before this
// client first said it waits), so every waiting id is also read every POLL_MS, and at once when
// LISTEN (re)starts: a job that finished before anyone listened is found that way too.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { finishedChannel } from "./db/schema.js";
import type { Tables } from "./db/tables.js";
import { ClientClosedError, JobCancelledError, JobFailedError, JobNotFoundError, WaitTimeoutError } from "./errors.js";
import { forgetWaitingClient, touchWaitingClient, TOUCH_EVERY_MS } from "./sql/waiting-clients.js";

const POLL_MS = 2_000;
/** Ids per read: each is a few index probes. */
const READ_BATCH = 5_000;

interface Waiter {
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Outcome {
  id: string;
  live: boolean;
  state: string | null;
  result: unknown;
  last_error: string | null;
}

export class Waiters {
  private readonly waiting = new Map<string, Set<Waiter>>();
  /** Ids announced since the last read. */
  private due = new Set<string>();
  private reading: Promise<void> | undefined;
  private listening: Promise<void> | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private poll: NodeJS.Timeout | undefined;
  /** This client's row in pgq.waiting_clients. */
  private readonly client = randomUUID();
  private touchedAt = -Infinity;
  private touching: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly t: Tables,
    private readonly log: Logger,
    /** Behind a transaction-mode pooler, LISTEN never delivers: polling only. */
    private readonly listen: boolean,
  ) {}

  /** Resolves with the job's result once it completed; rejects once it died, was cancelled or expired. */
  async wait(id: string, timeoutMs: number | undefined): Promise<unknown> {
    let waiter!: Waiter;
    const settled = new Promise<unknown>((resolve, reject) => {
      waiter = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.remove(id, waiter);
          reject(new WaitTimeoutError(id, timeoutMs));
        }, timeoutMs);
      }
      let set = this.waiting.get(id);
      if (!set) this.waiting.set(id, (set = new Set()));
      set.add(waiter);
    });
    // Until it is returned below, a timeout must not count as an unhandled rejection.
    settled.catch(() => undefined);
    this.poll ??= setInterval(() => {
      this.announce([...this.waiting.keys()]);
      this.touch().catch((error: unknown) => this.log.debug({ err: error }, "saying that this client waits failed"));
    }, POLL_MS);
    try {
      if (this.listen) {
        await this.touch();
        this.listening ??= this.startListening();
        await this.listening;
      }
      // Read at once, and let its error reach the caller (a schema not migrated, say).
      for (const o of await this.outcomes([id])) if (!o.live) this.finished(o);
    } catch (error) {
      clearTimeout(waiter.timer);
      this.remove(id, waiter);
      throw error;
    }
    return settled;
  }

  /** Rejects every waiter: the client is closing. */
  async close(): Promise<void> {
    clearInterval(this.poll);
    this.poll = undefined;
    for (const [, set] of this.waiting) for (const w of set) this.settle(w, () => w.reject(new ClientClosedError("q.waitFor()")));
    this.waiting.clear();
    await this.reading;
    await this.unlisten?.().catch(() => undefined);
    if (this.touchedAt > -Infinity) await forgetWaitingClient(this.sql, this.t, this.client).catch(() => undefined);
  }

  /** Says that this client waits, unless it said so lately: finished jobs are announced only then. */
  private async touch(): Promise<void> {
    if (!this.listen || performance.now() - this.touchedAt < TOUCH_EVERY_MS) return;
    this.touching ??= touchWaitingClient(this.sql, this.t, this.client)
      .then(() => void (this.touchedAt = performance.now()))
      .finally(() => (this.touching = undefined));
    await this.touching;
  }

  private async startListening(): Promise<void> {
    try {
      const meta = await this.sql.listen(
        finishedChannel(this.t.schema),
        (payload) => this.announce(payload.split(",")),
        // On every (re)connect: whatever finished while nobody listened.
        () => this.announce([...this.waiting.keys()]),
      );
      this.unlisten = meta.unlisten;
    } catch (error) {
      this.log.warn({ err: error }, `cannot LISTEN for finished jobs; waiters poll every ${POLL_MS} ms`);
    }
  }

  private announce(ids: string[]): void {
    for (const id of ids) if (this.waiting.has(id)) this.due.add(id);
    if (this.due.size > 0) this.reading ??= this.read().finally(() => (this.reading = undefined));
  }

  private async read(): Promise<void> {
    while (this.due.size > 0) {
      const ids = [...this.due].slice(0, READ_BATCH);
      for (const id of ids) this.due.delete(id);
      let outcomes: Outcome[];
      try {
        outcomes = await this.outcomes(ids);
      } catch (error) {
        // The next poll reads them again.
        this.log.debug({ err: error }, "reading finished jobs for their waiters failed");
        return;
      }
      for (const o of outcomes) if (!o.live) this.finished(o);
    }
  }

  /** How the jobs ended; `live` for those still in pgq.jobs. */
  private outcomes(ids: string[]): Promise<Outcome[]> {
    return this.sql<Outcome[]>`
      select i.id::text, exists (select from ${this.t.jobs} j where j.id = i.id) as live,
             coalesce(h.state, case d.reason when 'expired' then 'expired' when 'failed' then 'dead' end) as state,
             h.result, coalesce(h.last_error, d.last_error) as last_error
      from unnest(${ids}::bigint[]) as i(id)
      left join lateral (
        select h.state, h.result, h.last_error from ${this.t.history} h
        where h.id = i.id order by h.finished_at desc limit 1) h on true
      left join ${this.t.deadJobs} d on d.id = i.id`;
  }

  private finished(o: Outcome): void {
    const set = this.waiting.get(o.id);
    if (!set) return;
    for (const w of set) {
      this.settle(w, () => {
        if (o.state === "completed") w.resolve(o.result);
        else if (o.state === "cancelled") w.reject(new JobCancelledError(o.id));
        else if (o.state === "dead" || o.state === "expired") w.reject(new JobFailedError(o.id, o.state, o.last_error));
        else w.reject(new JobNotFoundError(o.id));
      });
      this.remove(o.id, w);
    }
  }

  private settle(w: Waiter, how: () => void): void {
    clearTimeout(w.timer);
    how();
  }

  private remove(id: string, waiter: Waiter): void {
    const set = this.waiting.get(id);
    set?.delete(waiter);
    if (set?.size === 0) this.waiting.delete(id);
    if (this.waiting.size === 0) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
  }
}
