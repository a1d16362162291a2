// A worker: what q.work() returns. It puts the parts together and owns their lifecycle:
//
//   fetch-loop.ts   claims jobs into free slots, woken by wake-up.ts
//   slots.ts        the running jobs and those claimed ahead, with their leases
//   executor.ts     runs one job in either mode
//   completer.ts    batches completions and failures; hands jobs back on stop
//   heartbeat.ts    renews the leases the worker holds
//   listener.ts     LISTEN, so a commit wakes the fetch loop within milliseconds
//   marker.ts       (one per client) the session that tells other processes this one is alive
//
// Rescue and cron are not here: they run once per client (src/maintenance/).
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { ConnectionSource } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import type { Tables } from "../db/tables.js";
import { assertOptionsObject } from "../entry-checks.js";
import { JobCancelledError, WorkerStoppedError } from "../errors.js";
import type { ClaimedJob } from "../sql/claim.js";
import { observeWorker } from "../telemetry/worker-metrics.js";
import type { ProcessingMode, StopOptions, Worker } from "../types.js";
import { assertInteger } from "../validate.js";
import { ClaimBounds, type Landing } from "./claim-bounds.js";
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
  /** The worker's own pool (it closes it): claims, renewals, completions, failures, lease-mode ctx.sql. */
  pool: OwnPool;
  /** Where transaction-mode slots open their own connections. */
  connection: ConnectionSource;
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
  private readonly executor: Executor;
  private readonly fetchLoop: FetchLoop;
  private readonly bounds: ClaimBounds;
  private readonly executions = new Set<Promise<void>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private loopDone: Promise<void> | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

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
    this.connections = settings.mode === "transaction" ? new SlotConnections(deps.connection, log, deps.pooled ?? false) : undefined;
    this.executor = new Executor({
      settings, handlers, pool, tables, log,
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
      settings, pool, tables, log,
      slots: this.slots,
      wake: this.wakeUp,
      bounds: this.bounds,
      claimed: (jobs) => this.claimed(jobs),
      claimFailed: (error) => this.emit("claim-failed", error),
    });
    observeWorker(this);
    this.ready = this.start();
  }

  /** Claim now: jobs may have become ready that no notification announced (a rescue, say), and from the head. */
  wake(): void {
    this.bounds.rewindAll();
    this.wakeUp.now();
  }

  private async start(): Promise<void> {
    const { listener, pool, marker } = this.deps;
    if (marker) {
      // Before the first claim, so that the worker's jobs are rescued at once should it die.
      const { name, queues, mode, concurrency } = this.settings;
      await marker.add({ name, host: hostname(), pid: process.pid, queues, mode, concurrency }, MARKER_WAIT_MS);
      // Rescuers may have suspected this worker while its marker was away: renew at once.
      marker.on("restored", this.renewNow);
    }
    if (listener) {
      const queues = new Set(this.settings.queues);
      listener.on("notify", (payload) => {
        const { queue, dueInMs, landing } = parseNotification(payload);
        if (!queues.has(queue)) return;
        if (landing) this.bounds.heard(queue, landing);
        if (dueInMs > 0) this.wakeUp.in(dueInMs);
        else this.wakeUp.now();
      });
      listener.on("restored", () => {
        this.bounds.rewindAll();
        this.wakeUp.now();
      });
      // Without a listener, a cancelled job is aborted at the next renewal, which finds its row gone.
      listener.on("cancel", (payload) => {
        for (const id of payload.split(",")) this.slots.cancel(id, new JobCancelledError(id));
      });
      await listener.start({ notifyVia: pool, pollIntervalMs: this.settings.pollIntervalMs });
    }
    this.heartbeat = setInterval(this.renewNow, heartbeatMs(this.settings.leaseMs));
    let attempted!: () => void;
    const firstClaim = new Promise<void>((resolve) => (attempted = resolve));
    this.loopDone = this.fetchLoop.run(attempted);
    await firstClaim;
    this.log.debug({ queues: this.settings.queues, mode: this.settings.mode }, "worker started");
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
      await this.ready;
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
      await this.deps.listener?.close();
      await this.deps.pool.end();
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

/** How long renewals, completions and start-up wait for a lost marker to be taken again. */
const MARKER_WAIT_MS = 2_000;

/** Waits until the marker is held (or MARKER_WAIT_MS passed): a rescuer may be about to take jobs whose worker has none. */
function markerWait(marker: Marker | undefined): () => Promise<void> {
  return marker ? async () => void (await marker.ready(MARKER_WAIT_MS)) : () => Promise.resolve();
}

/** A notification's payload is the queue's name, then, for a job that is not due yet, a
 *  newline and how many ms from the commit it comes due (relative, so clocks do not matter). */
/**
 * A notification on the jobs channel (migration 000012): `queue` (from earlier versions),
 * `queue\np<priority>` (ready jobs), `queue\nrewind` (ready jobs behind any bound), `queue\n<ms>` (delayed).
 */
function parseNotification(payload: string): { queue: string; dueInMs: number; landing?: Landing } {
  const newline = payload.indexOf("\n");
  if (newline < 0) return { queue: payload, dueInMs: 0 };
  const queue = payload.slice(0, newline);
  const rest = payload.slice(newline + 1);
  if (rest === "rewind") return { queue, dueInMs: 0, landing: { kind: "rewind" } };
  if (rest.startsWith("p")) return { queue, dueInMs: 0, landing: { kind: "priority", priority: Number(rest.slice(1)) } };
  return { queue, dueInMs: Number(rest) || 0 };
}
