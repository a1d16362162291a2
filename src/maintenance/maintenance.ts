// Maintenance: the work that keeps the queue healthy whoever's jobs are running, done once per
// client (however many workers it has), not once per worker:
//
//   rescue   jobs whose lease lapsed (their worker died or hung) are failed and made claimable
//   cron     due schedule ticks become jobs (scheduler.ts)
//
// Every task is safe to run in many processes at once: the statements are fenced in the
// database, so running them in each process only adds promptness, never duplicates.
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { bounded, STATEMENT_BOUND_MS } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import type { Tables } from "../db/tables.js";
import { rescueLapsedLeases } from "../sql/rescue.js";
import { Scheduler } from "./scheduler.js";

/** How often the tasks are looked at; each goes to the database only when it is due. */
const TICK_MS = 100;
/** Rescue at least this often, whatever the workers' poll: other workers' lapsed jobs wait on it. */
const RESCUE_MAX_INTERVAL_MS = 5_000;
const RESCUE_MIN_INTERVAL_MS = 1_000;

interface MaintenanceEvents {
  /** Jobs were made claimable again: workers should claim now rather than at their poll. */
  rescued: [count: number];
}

export class Maintenance extends EventEmitter<MaintenanceEvents> {
  private readonly scheduler: Scheduler;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rescueEveryMs = RESCUE_MAX_INTERVAL_MS;
  private nextRescueAt = 0;

  constructor(
    private readonly pool: OwnPool,
    private readonly tables: Tables,
    private readonly log: Logger,
  ) {
    super();
    this.scheduler = new Scheduler(pool, tables, log);
  }

  /** Starts the tasks; a worker polling every `pollIntervalMs` wants rescues about as often. */
  start(pollIntervalMs: number): void {
    this.rescueEveryMs = Math.min(this.rescueEveryMs, Math.max(RESCUE_MIN_INTERVAL_MS, pollIntervalMs));
    this.timer ??= setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = undefined));
    }, TICK_MS);
  }

  /** Stops the tasks, once the one running now has finished, and closes the pool. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await this.pool.end();
  }

  private async tick(): Promise<void> {
    if (performance.now() >= this.nextRescueAt) {
      this.nextRescueAt = performance.now() + this.rescueEveryMs;
      await this.rescue();
    }
    await this.scheduler.runIfDue();
  }

  private async rescue(): Promise<void> {
    try {
      const rescued = await bounded(rescueLapsedLeases(this.pool.sql, this.tables), STATEMENT_BOUND_MS, "rescuing lapsed leases");
      if (rescued.length > 0) {
        this.log.warn({ jobs: rescued.length }, "rescued jobs whose worker stopped renewing their lease");
        this.emit("rescued", rescued.length);
      }
    } catch (error) {
      this.log.debug({ err: error }, "rescuing lapsed leases failed");
      this.pool.recoverFrom(error);
    }
  }
}
