// What all the workers of one client share, so that a process's connections grow neither with
// its workers nor with lease-mode concurrency:
//
//   claims    every worker's claims, on a connection of their own: a claim never waits behind
//             a completion's commit, and the two commit in parallel.
//   pool      everything else pgq writes: completions, failures, renewals, progress, the LISTEN
//             probes, and maintenance (rescue, cron, expiry, history).
//   Once a connection is busy, postgres.js pipelines further statements on it, so these two
//   carry any number of workers. Each is replaced when it gets stuck (db/own-pool.ts): claims by
//   the fetch loops, the rest by maintenance, whose statements run on it every second.
//   listener  one LISTEN connection; each notification goes to the workers of its queue.
//   marker    one session marker (marker.ts); none behind a transaction-mode pooler.
//
// Not here: a transaction-mode slot's connection (the handler runs in its transaction, so each
// slot keeps one), and lease-mode handlers' ctx.sql, a pool of their worker's that opens
// connections only as the handlers query (worker.ts).
//
// The marker keeps a session of its own rather than the LISTEN one: the listener replaces its
// connection whenever it goes deaf, and ending the marker's session tells every other process's
// rescuer that this one died. Nor does it use the pool, which is replaced when it gets stuck.
import type { Logger } from "pino";
import { describeTarget, openConnection, poolerOptions, type ConnectionSource } from "../db/connections.js";
import { OwnPool } from "../db/own-pool.js";
import { cancelChannel, readyChannel } from "../db/schema.js";
import type { Tables } from "../db/tables.js";
import { TooManyConnectionsError } from "../errors.js";
import type { Pooler } from "../types.js";
import { Listener } from "./listener.js";
import { Marker } from "./marker.js";
import type { WorkerSettings } from "./settings.js";

/** pgq's own connections, whatever its workers: one for claims, one for the rest. */
export const POOL_CONNECTIONS = 2;

type Shape = Pick<WorkerSettings, "mode" | "concurrency" | "listen">;

/**
 * The connections pgq opens for a client's workers, and what they are for (README "Connections"):
 * the pool, one LISTEN if any worker listens, the marker (none behind a transaction-mode pooler),
 * one per transaction-mode slot.
 */
export function connectionsWanted(workers: readonly Shape[], marked: boolean): { total: number; parts: string } {
  const slots = workers.reduce((n, w) => n + (w.mode === "transaction" ? w.concurrency : 0), 0);
  const listen = workers.some((w) => w.listen) ? 1 : 0;
  const marker = marked ? 1 : 0;
  const parts = [`${POOL_CONNECTIONS} pgq`, listen && "1 LISTEN", marker && "1 marker", slots && `${slots} transaction-mode slot${slots === 1 ? "" : "s"}`];
  return { total: POOL_CONNECTIONS + listen + marker + slots, parts: parts.filter(Boolean).join(" + ") };
}

/** Names the server, what this process wanted and what to change: one line. */
export function tooManyConnections(server: string, error: unknown, workers: readonly Shape[], marked: boolean): TooManyConnectionsError {
  const { total, parts } = connectionsWanted(workers, marked);
  const n = workers.length;
  const reason = error instanceof Error ? error.message : String(error);
  return new TooManyConnectionsError(
    `PostgreSQL at ${server} refused a connection (${reason}): pgq wants ${total} in this process for its ${n} worker${n === 1 ? "" : "s"} ` +
      `(${parts}), besides q.sql's and lease-mode handlers' queries; raise max_connections (or the role's or database's ` +
      `connection limit), run fewer worker ` +
      `processes or less transaction-mode concurrency, or connect through PgBouncer (--pooler transaction)`,
    error,
  );
}

export class SharedConnections {
  readonly claims: OwnPool;
  readonly pool: OwnPool;
  /** Behind a transaction-mode pooler there is none: session locks do not hold there. */
  readonly marker: Marker | undefined;
  private listener: Listener | undefined;
  private readonly workers = new Set<Shape>();

  constructor(
    private readonly source: ConnectionSource,
    pooler: Pooler,
    private readonly t: Tables,
    private readonly log: Logger,
  ) {
    // Kept open while idle, whatever the source's idle_timeout (pgq work closes q.sql's within
    // 200 ms): a claim every poll on a fresh connection costs the server a backend's start and
    // postgres.js's type fetch, far more than the claim itself (bench/RESULTS.md, idle cost).
    const open = () => openConnection(source, log, { max: 1, idle_timeout: 0, ...poolerOptions(pooler) });
    this.claims = new OwnPool(open, log);
    this.pool = new OwnPool(open, log);
    this.marker = pooler === "transaction" ? undefined : new Marker(source, t, log);
  }

  /** A worker starts: the listener it subscribes to, if it listens. */
  join(worker: Shape): Listener | undefined {
    this.workers.add(worker);
    if (!worker.listen) return undefined;
    return (this.listener ??= new Listener(this.source, readyChannel(this.t.schema), this.log, cancelChannel(this.t.schema)));
  }

  /** A worker stopped; true if it was the last, and the connections may close. */
  leave(worker: Shape): boolean {
    this.workers.delete(worker);
    return this.workers.size === 0;
  }

  /** The one line to log or throw when the server refused a connection for want of slots. */
  refused(error: unknown): TooManyConnectionsError {
    return tooManyConnections(describeTarget(this.pool.sql), error, [...this.workers], this.marker !== undefined);
  }

  /** Once no worker is left: the marker's session ends (its lock with it), then LISTEN and the pools. */
  async close(): Promise<void> {
    await this.marker?.close();
    await this.listener?.close();
    await Promise.all([this.claims.end(), this.pool.end()]);
  }
}
