// The session marker: one per client with workers, so that PostgreSQL itself tells every other
// process when this one is gone. It holds a session-level advisory lock (src/sql/workers.ts) on
// a connection of its own and registers the client's workers in pgq.workers under the lock's
// key; when the process dies, the server closes the session, the lock goes, and any rescuer
// may treat these workers' jobs as lapsed at once (src/sql/rescue.ts).
//
// A live process can lose the marker too: its connection cut, or the server restarted. It then
// reconnects at once, takes a new key and moves its workers to it, and says so ("restored"), so
// the workers renew their leases at once. Rescuers wait a moment before believing a marker is
// gone (src/maintenance/maintenance.ts), which is the time this has to come back.
//
// The marker's session also holds the lead of maintenance when this client has it (one client
// per schema runs maintenance), or the deputy's place (the client that asks for the lead every
// second): lost with the session, and asked for again, never assumed, once the marker is back.
import { EventEmitter } from "node:events";
import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { Backoff, sleep } from "../backoff.js";
import { bounded, openConnection, type ConnectionSource } from "../db/connections.js";
import { isTooManyConnections } from "../db/outage.js";
import type { Tables } from "../db/tables.js";
import { registerWorkers, takeMaintenanceLead, takeWorkerLock, touchWorkers, unregisterWorker, type WorkerRegistration } from "../sql/workers.js";

/** Reconnecting: at once, then 50 ms, 100 ms, ... at most 1 s apart. */
const RECONNECT = { baseMs: 50, maxMs: 1_000 };
/** How often the marker's session is asked whether it still answers (a half-open TCP connection does not close). */
const TOUCH_EVERY_MS = 10_000;
const STATEMENT_MS = 5_000;

interface MarkerEvents {
  /** The marker was taken again after it was lost. */
  restored: [];
}

export class Marker extends EventEmitter<MarkerEvents> {
  private sql: Sql | undefined;
  private key = 0;
  private held = false;
  /** This client leads maintenance: the marker's session holds the lead's lock. */
  private leads = false;
  /** This client is the deputy of maintenance's leader: the marker's session holds the deputy's lock. */
  private deputizes = false;
  /** How many times the marker was taken: a new session has no lead and no deputy's place. */
  private sessions = 0;
  private closed = false;
  private lostAt = -Infinity;
  private readonly workers = new Map<string, WorkerRegistration>();
  private waiters: (() => void)[] = [];
  private connecting: Promise<void> | undefined;
  private readonly touchTimer: NodeJS.Timeout;
  /** While the server refuses the marker's connection for want of slots: its error (a starting worker stops on it). */
  refusal: unknown;

  constructor(
    private readonly connection: ConnectionSource,
    private readonly tables: Tables,
    private readonly log: Logger,
  ) {
    super();
    // One "restored" listener per worker of the client, however many.
    this.setMaxListeners(0);
    this.touchTimer = setInterval(() => void this.touch(), TOUCH_EVERY_MS).unref();
    this.connect();
  }

  /** Registers a worker; resolves once it is registered under a held marker, or after `boundMs`. */
  async add(worker: WorkerRegistration, boundMs: number): Promise<void> {
    this.workers.set(worker.name, worker);
    if (!(await this.ready(boundMs))) return;
    try {
      await bounded(registerWorkers(this.sql!, this.tables, this.key, [worker]), STATEMENT_MS, "registering a worker");
    } catch (error) {
      // Registered with the others when the marker is next taken; until then, leases only.
      this.log.debug({ err: error }, "could not register the worker yet");
    }
  }

  async remove(name: string): Promise<void> {
    this.workers.delete(name);
    if (!this.held) return;
    await bounded(unregisterWorker(this.sql!, this.tables, name), STATEMENT_MS, "unregistering a worker").catch(() => undefined);
  }

  /** True once the marker is held, or false after `boundMs`: renewals and completions wait for it. */
  ready(boundMs: number): Promise<boolean> {
    if (this.held || this.closed) return Promise.resolve(this.held);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), boundMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** The marker was lost within the last `ms`: the database may have dropped every session, not just this one. */
  lostWithin(ms: number): boolean {
    return !this.held || performance.now() - this.lostAt < ms;
  }

  /** Whether this client leads maintenance, as far as it knows without asking the database. */
  get leading(): boolean {
    return this.leads;
  }

  /** Whether this client is the leader's deputy, likewise. */
  get deputy(): boolean {
    return this.deputizes;
  }

  /** Which session holds the marker (a new one after each loss), or undefined while it is away. */
  get session(): number | undefined {
    return this.held ? this.sessions : undefined;
  }

  /**
   * Tries to take the lead of maintenance on the marker's session, or else the deputy's place (one
   * statement); true if this client leads. False while the marker is away: its new session must
   * ask again.
   */
  async lead(): Promise<boolean> {
    if (this.leads) return true;
    if (!this.held || this.closed) return false;
    const sql = this.sql!;
    const taken = await bounded(takeMaintenanceLead(sql, this.tables.schema, this.deputizes), STATEMENT_MS, "taking the lead of maintenance");
    // Lost meanwhile: the locks went with the old session, if that session took them.
    if (sql !== this.sql || !this.held) return false;
    this.deputizes = taken.deputy;
    return (this.leads = taken.lead);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.leads = false;
    this.deputizes = false;
    clearInterval(this.touchTimer);
    await this.connecting;
    const sql = this.sql;
    this.sql = undefined;
    this.held = false;
    // Ending the session releases the lock.
    await sql?.end({ timeout: 1 }).catch(() => undefined);
  }

  private connect(): void {
    this.connecting ??= (async () => {
      const backoff = new Backoff(RECONNECT);
      for (let first = true; !this.closed; first = false) {
        if (!first) await sleep(backoff.next());
        if (this.closed) break;
        try {
          await this.take();
          this.refusal = undefined;
          return;
        } catch (error) {
          this.refusal = isTooManyConnections(error) ? error : undefined;
          this.log.debug({ err: error }, "could not take the worker marker yet");
          this.retire();
        }
      }
    })().finally(() => {
      this.connecting = undefined;
      // Lost again before the loop ended: go round once more.
      if (!this.held && !this.closed) this.connect();
    });
  }

  private async take(): Promise<void> {
    const sql: Sql = openConnection(this.connection, this.log, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      onclose: () => {
        if (sql === this.sql) this.lost("its connection closed");
      },
    } as never);
    this.sql = sql;
    // A new key each time: the old session may linger on the server (a half-open connection) and still hold the old one.
    let key: number;
    do key = randomInt(1, 2 ** 31 - 1);
    while (!(await bounded(takeWorkerLock(sql, key), STATEMENT_MS, "taking the worker marker")));
    await bounded(registerWorkers(sql, this.tables, key, [...this.workers.values()]), STATEMENT_MS, "registering workers");
    if (this.closed) return;
    this.key = key;
    this.sessions++;
    this.held = true;
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
    if (this.lostAt > -Infinity) {
      this.log.info("the worker marker is back; renewing leases");
      this.emit("restored");
    }
  }

  private lost(why: string): void {
    if (this.closed) return;
    if (this.held) this.log.warn(`the worker marker was lost (${why}); taking it again`);
    this.held = false;
    this.leads = false;
    this.deputizes = false;
    this.lostAt = performance.now();
    this.retire();
    this.connect();
  }

  private retire(): void {
    const sql = this.sql;
    this.sql = undefined;
    void sql?.end({ timeout: 0 }).catch(() => undefined);
  }

  private async touch(): Promise<void> {
    if (!this.held || this.closed) return;
    const sql = this.sql!;
    try {
      await bounded(touchWorkers(sql, this.tables, this.key), STATEMENT_MS, "touching the worker marker");
    } catch (error) {
      if (sql === this.sql && this.held) this.lost(`its session did not answer: ${(error as Error).message}`);
    }
  }
}
