// A worker: what q.work() returns. It puts the parts together and owns their lifecycle:
//
//   fetch-loop.ts   claims jobs into free slots, woken by wake-up.ts
//   slots.ts        the running jobs and those claimed ahead, with their leases
//   executor.ts     runs one job in either mode
//   completer.ts    batches completions and failures; hands jobs back on stop
//   heartbeat.ts    renews the leases the worker holds
//   listener.ts     (one per client) LISTEN, so a commit wakes the fetch loop within milliseconds
//   marker.ts       (one per client) the session that tells other processes this one is alive
//
// Rescue and cron are not here: they run once per client (src/maintenance/). The pool, the
// listener and the marker are the client's, shared by its workers (shared-connections.ts).
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { openConnection, type ConnectionSource } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import { isTooManyConnections } from "../db/outage.js";
import type { Tables } from "../db/tables.js";
import { assertOptionsObject } from "../entry-checks.js";
import { JobCancelledError, WorkerStoppedError } from "../errors.js";
import type { ClaimedJob } from "../sql/claim.js";
import { observeWorker } from "../telemetry/worker-metrics.js";
import type { ProcessingMode, StopOptions, Worker } from "../types.js";
import { assertInteger } from "../validate.js";
import { ClaimBounds } from "./claim-bounds.js";
import { Completer } from "./completer.js";
import type { WorkerEvents } from "./events.js";
import { Executor } from "./executor.js";
import { FetchLoop } from "./fetch-loop.js";
import { heartbeatMs, renewHeld } from "./heartbeat.js";
import type { Listener } from "./listener.js";
import type { Marker } from "./marker.js";
import type { Handlers, WorkerSettings } from "./settings.js";
import { SlotConnections } from "./slot-connections.js";
import { Slots, type Running } from "./slots.js";
import { WakeUp } from "./wake-up.js";

export interface WorkerDeps {
  /** Where claims go, shared with the client's other workers (the client closes it). */
  claims: OwnPool;
  /** pgq's pool for the rest, shared likewise: renewals, completions, failures, progress. */
  pool: OwnPool;
  /** The one clear error for a connection the server refused for want of slots (shared-connections.ts). */
  refused: (error: unknown) => Error;
  /** Where transaction-mode slots and lease-mode handlers open their own connections. */
  connection: ConnectionSource;
  /** The client's listener, started by the first worker that listens; the client closes it. */
  listener: Listener | undefined;
  /** The client's session marker, under which the worker registers; none behind a transaction-mode pooler. */
  marker: Marker | undefined;
  /** Behind a transaction-mode pooler: a slot's backend changes with every transaction. */
  pooled?: boolean;
  tables: Tables;
  log: Logger;
  /** The largest result a handler may return (the client's maxPayloadBytes). */
  maxResultBytes: number;
}

export class PgqWorker extends EventEmitter<WorkerEvents> implements Worker {
  readonly name: string;
  readonly ready: Promise<void>;
  private readonly log: Logger;
  private readonly slots: Slots;
  private readonly wakeUp: WakeUp;
  private readonly completer: Completer;
  private readonly connections: SlotConnections | undefined;
  private readonly handlerSql: Sql | undefined;
  private readonly executor: Executor;
  private readonly fetchLoop: FetchLoop;
  private readonly bounds: ClaimBounds;
  private readonly executions = new Set<Promise<void>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private loopDone: Promise<void> | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** The last claim failed because the server refused a connection, and the worker said so. */
  private refusalLogged = false;
  private firstClaimError: unknown;

  constructor(
    private readonly settings: WorkerSettings,
    handlers: Handlers,
    private readonly deps: WorkerDeps,
  ) {
    super();
    this.name = settings.name;
    const log = (this.log = deps.log.child({ worker: settings.name }));
    const { pool, tables } = deps;
    this.slots = new Slots(settings.concurrency);
    this.wakeUp = new WakeUp(settings.pollIntervalMs);
    const untilMarked = markerWait(deps.marker);
    this.completer = new Completer(pool, tables, untilMarked);
    this.connections = settings.mode === "transaction" ? new SlotConnections(deps.connection, log, deps.pooled ?? false, settings.concurrency) : undefined;
    // Lease-mode handlers query through a pool of their own as ctx.sql, not pgq's: room for every
    // job (one may hold a connection in ctx.sql.begin() and query ctx.sql meanwhile), opened only
    // as handlers query, and closed again once they stop, so that idle workers hold none.
    this.handlerSql = settings.mode === "lease"
      ? openConnection(deps.connection, log, { max: settings.concurrency + 1, idle_timeout: HANDLER_IDLE_S })
      : undefined;
    this.executor = new Executor({
      settings, handlers, pool, tables, log,
      handlerSql: this.handlerSql,
      completer: this.completer,
      connections: this.connections,
      untilMarked,
      events: this,
      freeSlot: (id) => this.freeSlot(id),
      retryIn: (ms) => this.wakeUp.in(ms),
      maxResultBytes: deps.maxResultBytes,
    });
    this.bounds = new ClaimBounds(settings.queues);
    this.fetchLoop = new FetchLoop({
      settings, pool: deps.claims, asidePool: pool, tables, log,
      slots: this.slots,
      wake: this.wakeUp,
      bounds: this.bounds,
      hearsAll: () => deps.listener?.delivering ?? false,
      claimed: (jobs) => this.claimed(jobs),
      claimFailed: (error) => this.claimFailed(error),
    });
    observeWorker(this);
    this.ready = this.start();
    // A worker that could not start stops at once, and gives its connections back.
    this.ready.catch(() => void this.stop());
  }

  /** Claim now: jobs may have become ready that no notification announced (a rescue, say), and from the head. */
  wake(): void {
    this.bounds.rewindAll();
    this.wakeUp.now();
  }

  /**
   * Rejects with TooManyConnectionsError if the server refused the worker's connections for want
   * of slots (pgq work exits on it): that does not pass by waiting. Any other failure to
   * connect is an outage, waited out in the background.
   */
  private async start(): Promise<void> {
    const { listener, pool, marker } = this.deps;
    this.assertAdmitted(await this.connections?.openError());
    if (marker) {
      // Before the first claim, so that the worker's jobs are rescued at once should it die.
      const { name, queues, mode, concurrency } = this.settings;
      await marker.add({ name, host: hostname(), pid: process.pid, queues, mode, concurrency }, MARKER_WAIT_MS);
      this.assertAdmitted(marker.refusal);
      // Rescuers may have suspected this worker while its marker was away: renew at once.
      marker.on("restored", this.renewNow);
    }
    if (listener) {
      this.unsubscribe = listener.subscribe(this.settings.queues, {
        ready: (queue, dueInMs, landing) => {
          // A delayed job lands behind a bound only with a higher priority, which its notification
          // says (claim-bounds.ts); one from a schema before migration 000016 does not say, and is found by the audit.
          if (dueInMs === 0 || (landing?.kind === "priority" && landing.runAtMs !== undefined)) this.bounds.heard(queue, landing);
          if (dueInMs > 0) this.wakeUp.in(dueInMs);
          else this.wakeUp.now();
        },
        restored: () => {
          this.bounds.rewindAll();
          this.wakeUp.now();
        },
        // Without a listener, a cancelled job is aborted at the next renewal, which finds its row gone.
        cancel: (ids) => ids.forEach((id) => this.slots.cancel(id, new JobCancelledError(id))),
      });
      await listener.start({ notifyVia: pool, pollIntervalMs: this.settings.pollIntervalMs }).catch((error: unknown) => this.assertAdmitted(error));
    }
    this.heartbeat = setInterval(this.renewNow, heartbeatMs(this.settings.leaseMs));
    let attempted!: () => void;
    const firstClaim = new Promise<void>((resolve) => (attempted = resolve));
    this.loopDone = this.fetchLoop.run(attempted);
    await firstClaim;
    this.assertAdmitted(this.firstClaimError);
    this.log.debug({ queues: this.settings.queues, mode: this.settings.mode }, "worker started");
  }

  /** Throws the one clear line if `error` is the server refusing a connection for want of slots. */
  private assertAdmitted(error: unknown): void {
    if (isTooManyConnections(error)) throw this.deps.refused(error);
  }

  private claimFailed(error: unknown): void {
    this.firstClaimError ??= error;
    this.emit("claim-failed", error);
    // A running worker keeps retrying, as through any outage, and says once what to change.
    if (isTooManyConnections(error) && !this.refusalLogged) {
      this.refusalLogged = true;
      this.log.error({ err: error }, this.deps.refused(error).message);
    }
  }

  /** The renewal under way, which stop() waits for before it ends the pool the renewal writes on. */
  private renewal: Promise<void> | undefined;
  private readonly renewNow = (): void => {
    if (this.renewal) return;
    const { pool, tables, marker } = this.deps;
    // Renewing while the marker is away would keep a lease that a rescuer is about to take anyway.
    this.renewal = (marker?.ready(MARKER_WAIT_MS) ?? Promise.resolve())
      .then(() => renewHeld(pool, tables, this.slots, this.settings.leaseMs, this.log))
      .finally(() => (this.renewal = undefined));
  };

  /**
   * Stops in two stages. First, claiming stops and in-flight jobs may finish. Once graceMs
   * has passed (default: no limit), the jobs still running are aborted (ctx.signal) and
   * handed back to the queue without spending an attempt. A second call may shorten the
   * grace, as a second Ctrl-C does in the CLI.
   */
  stop(options: StopOptions = {}): Promise<void> {
    assertOptionsObject("worker.stop()", options);
    const { graceMs } = options;
    if (graceMs !== undefined) {
      assertInteger(graceMs, "graceMs", 0);
      clearTimeout(this.graceTimer);
      this.graceTimer = setTimeout(() => this.slots.abortRunning(new WorkerStoppedError()), graceMs);
    }
    this.stopped ??= (async () => {
      this.stopping = true;
      await this.ready.catch(() => undefined);
      this.fetchLoop.stop();
      await this.loopDone;
      await this.completer.release(this.slots.takeWaiting(), this.log);
      while (this.executions.size > 0) await Promise.allSettled([...this.executions]);
      clearTimeout(this.graceTimer);
      clearInterval(this.heartbeat);
      this.deps.marker?.off("restored", this.renewNow);
      await this.renewal;
      await this.completer.idle();
      await this.deps.marker?.remove(this.name);
      await this.connections?.closeAll();
      await this.handlerSql?.end({ timeout: 5 });
      this.unsubscribe?.();
      this.log.debug("worker stopped");
      this.emit("stopped");
    })();
    return this.stopped;
  }

  get mode(): ProcessingMode {
    return this.settings.mode;
  }

  /** Running jobs, and how many may run at once (metrics). */
  get slotUsage(): { busy: number; total: number } {
    return { busy: this.slots.busy, total: this.slots.total };
  }

  /** Whether LISTEN is in place; undefined when the worker only polls. */
  get listening(): boolean | undefined {
    return this.deps.listener?.isListening;
  }

  private claimed(jobs: ClaimedJob[]): void {
    this.refusalLogged = false;
    this.firstClaimError ??= null;
    this.emit("claim-done", jobs.length);
    this.startWaiting();
    if (jobs.length > 0) this.emit("claimed", jobs.length);
  }

  /** Starts waiting jobs while slots are free; after stop(), they are released instead. */
  private startWaiting(): void {
    if (!this.stopping) this.slots.startWaiting(this.runJob);
  }

  private readonly runJob = (entry: Running): void => {
    const execution = this.executor.run(entry);
    this.executions.add(execution);
    void execution.finally(() => this.executions.delete(execution));
  };

  /** A slot is free: its job finished, or (lease mode) only its batched completion is left. */
  private freeSlot(id: string): void {
    if (!this.slots.free(id, performance.now())) return;
    this.startWaiting();
    this.wakeUp.now(false);
  }
}

/** Lease mode: a handlers' connection unused this long closes. */
const HANDLER_IDLE_S = 30;

/** How long renewals, completions and start-up wait for a lost marker to be taken again. */
const MARKER_WAIT_MS = 2_000;

/** Waits until the marker is held (or MARKER_WAIT_MS passed): a rescuer may be about to take jobs whose worker has none. */
function markerWait(marker: Marker | undefined): () => Promise<void> {
  return marker ? async () => void (await marker.ready(MARKER_WAIT_MS)) : () => Promise.resolve();
}
