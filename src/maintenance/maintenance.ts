// Maintenance: the work that keeps the queue healthy whoever's jobs are running, done by one
// client per schema (however many workers and processes there are), not once per worker:
//
//   rescue   jobs whose worker's session ended (it died), every second, and jobs whose lease
//            lapsed (their worker died, hung, or sits behind a pooler), are failed and made claimable
//   forget   rows of pgq.workers whose worker is long dead
//   cron     due schedule ticks become jobs (scheduler.ts)
//   expire   waiting jobs past their expiry are finished as expired (sql/expire.ts)
//   history  the partitions of pgq.history for the days ahead are made, and the past ones
//            dropped whole: that is retention (sql/history.ts)
//
// Every task is safe to run in many processes at once: the statements are fenced in the
// database. So one client per schema runs them, the leader: the one whose marker's session
// holds the lead's advisory lock (src/sql/workers.ts). One other, the deputy, holds a second
// lock and tries to take the lead once a second; the rest try, for the lead or the deputy's
// place, every 10 s and at once with each new marker session. None runs anything else: 20 idle
// processes cost the database one process's maintenance, and one lead attempt a second, not 20
// (issue 17). When the leader dies, or its marker session ends, PostgreSQL drops the lock and
// the deputy leads within about a second (it gives its place up, which another client takes
// within 10 s); if the deputy is gone too, the first of the rest to try leads, within 10 s. Its
// rescues are announced to every process's workers (src/sql/rescue.ts). Behind a
// transaction-mode pooler, where there is no marker and session locks do not hold, every client
// runs them.
//
// Why not wait for the lead's lock instead of trying for it (a blocking pg_advisory_lock on the
// marker's session, handed over the moment the leader's session ends): a waiting statement holds
// a snapshot, so every waiting process would hold back the database's xmin horizon as long as it
// waited, the very thing that makes a queue's claims slow (README, "Claims and a held snapshot").
// And a waiter whose connection went half-open could be handed the lead and never use it.
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { bounded, STATEMENT_BOUND_MS } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import type { Tables } from "../db/tables.js";
import { finishExpired } from "../sql/expire.js";
import { maintainHistory } from "../sql/history.js";
import { findLostWorkers, rescueLapsedLeases, rescueLostWorkers } from "../sql/rescue.js";
import { forgetDeadWorkers } from "../sql/workers.js";
import type { Marker } from "../worker/marker.js";
import { Scheduler } from "./scheduler.js";

/** How often the tasks are looked at; each goes to the database only when it is due. */
const TICK_MS = 100;
/** The leader's deputy tries to take the lead this often: how long maintenance may be leaderless. */
const LEAD_EVERY_MS = 1_000;
/** Every other client tries, for the lead or the deputy's place, this often (and at once with a new marker session). */
const DEPUTY_EVERY_MS = 10_000;
/** Rescue at least this often, whatever the workers' poll: other workers' lapsed jobs wait on it. */
const RESCUE_MAX_INTERVAL_MS = 5_000;
const RESCUE_MIN_INTERVAL_MS = 1_000;
/** The walk for lapsed leases starts where the last one ended, and from the head this often (sql/rescue.ts). */
const RESCUE_FROM_HEAD_EVERY_MS = 60_000;
/** Look for workers whose session ended this often: one cheap statement (findLostWorkers). */
const LOST_WORKERS_EVERY_MS = 500;
/**
 * A worker's marker must be absent at two looks this far apart before its jobs are rescued:
 * a live worker whose marker connection was cut takes it again within milliseconds.
 */
const LOST_CONFIRM_MS = 500;
/** After this client's own marker was lost, the database may have dropped every session: lease expiry only for a while. */
const OWN_LOSS_GRACE_MS = 10_000;
const FORGET_EVERY_MS = 60_000;
/** An expired job is one the claim steps over until it is finished: not for long. */
const EXPIRE_EVERY_MS = 1_000;
/** Partitions are made days ahead: looking every few minutes is plenty. */
const HISTORY_EVERY_MS = 5 * 60_000;

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
  /** Where the next walk for lapsed leases starts; null from the head. */
  private rescueFrom: Date | null = null;
  private nextRescueFromHeadAt = 0;
  private nextLostCheckAt = 0;
  private nextForgetAt = 0;
  private nextExpireAt = 0;
  private nextHistoryAt = 0;
  private nextLeadAt = 0;
  /** The marker session the last attempt was made on. */
  private askedIn: number | undefined;
  /** Workers seen without their marker, by name: the key they had, and when they were first seen so. */
  private suspects = new Map<string, { key: number; since: number }>();

  constructor(
    /** The client's workers' pool (src/worker/shared-connections.ts): maintenance's statements are few and short. */
    private readonly pool: OwnPool,
    private readonly tables: Tables,
    private readonly log: Logger,
    /** Undefined behind a transaction-mode pooler, where sessions say nothing: lease expiry only. */
    private readonly marker: Marker | undefined,
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

  /** Stops the tasks, once the one running now has finished; the pool is the workers' too, and the client closes it. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async tick(): Promise<void> {
    if (this.marker && !(await this.leads(this.marker))) return;
    if (this.marker && performance.now() >= this.nextLostCheckAt) await this.rescueLostWorkers(this.marker);
    if (performance.now() >= this.nextRescueAt) {
      this.nextRescueAt = performance.now() + this.rescueEveryMs;
      await this.rescue();
    }
    await this.scheduler.runIfDue();
    if (performance.now() >= this.nextExpireAt) {
      this.nextExpireAt = performance.now() + EXPIRE_EVERY_MS;
      await this.task("finishing expired jobs", () => finishExpired(this.pool.sql, this.tables, this.log));
    }
    if (performance.now() >= this.nextHistoryAt) {
      this.nextHistoryAt = performance.now() + HISTORY_EVERY_MS;
      await this.task("maintaining history partitions", async () => {
        const { created, dropped } = await maintainHistory(this.pool.sql, this.tables);
        if (created.length > 0 || dropped.length > 0) this.log.info({ created, dropped }, "history partitions made ahead, and past ones dropped");
      });
    }
    if (performance.now() >= this.nextForgetAt) {
      this.nextForgetAt = performance.now() + FORGET_EVERY_MS;
      await bounded(forgetDeadWorkers(this.pool.sql, this.tables), STATEMENT_BOUND_MS, "forgetting dead workers").catch((error: unknown) =>
        this.log.debug({ err: error }, "forgetting dead workers failed"),
      );
    }
  }

  /** Whether this client leads; if not, tries to take the lead when due: LEAD_EVERY_MS for the deputy, DEPUTY_EVERY_MS for the rest. */
  private async leads(marker: Marker): Promise<boolean> {
    if (marker.leading) return true;
    const session = marker.session;
    // Away: its new session asks at once.
    if (session === undefined) return false;
    if (session === this.askedIn && performance.now() < this.nextLeadAt) return false;
    this.askedIn = session;
    let taken = false;
    let failed = false;
    try {
      taken = await marker.lead();
    } catch (error) {
      failed = true;
      this.log.debug({ err: error }, "taking the lead of maintenance failed");
    }
    this.nextLeadAt = performance.now() + (marker.deputy || failed ? LEAD_EVERY_MS : DEPUTY_EVERY_MS);
    if (!taken) return false;
    // A new leader, or this one after its marker was lost: every task is due now, and what was
    // suspected before is looked at afresh.
    this.log.info("this process leads maintenance (rescue, cron, expiry, history) for the schema");
    this.nextRescueAt = this.nextRescueFromHeadAt = this.nextLostCheckAt = this.nextForgetAt = this.nextExpireAt = this.nextHistoryAt = 0;
    this.suspects.clear();
    return true;
  }

  /** Runs one task, bounded; a failure waits for the task's next turn. */
  private async task(what: string, run: () => Promise<void>): Promise<void> {
    try {
      await bounded(run(), STATEMENT_BOUND_MS, what);
    } catch (error) {
      this.log.debug({ err: error }, `${what} failed`);
      this.pool.recoverFrom(error);
    }
  }

  /** Workers whose marker is absent at two looks LOST_CONFIRM_MS apart lose their jobs to the queue. */
  private async rescueLostWorkers(marker: Marker): Promise<void> {
    const now = performance.now();
    this.nextLostCheckAt = now + LOST_WORKERS_EVERY_MS;
    if (marker.lostWithin(OWN_LOSS_GRACE_MS)) {
      this.suspects.clear();
      return;
    }
    try {
      const lost = await bounded(findLostWorkers(this.pool.sql, this.tables), STATEMENT_BOUND_MS, "looking for lost workers");
      const suspects = new Map<string, { key: number; since: number }>();
      const confirmed: string[] = [];
      for (const w of lost) {
        const seen = this.suspects.get(w.name);
        const suspect = seen?.key === w.lock_key ? seen : { key: w.lock_key, since: now };
        suspects.set(w.name, suspect);
        if (now - suspect.since >= LOST_CONFIRM_MS) confirmed.push(w.name);
      }
      this.suspects = suspects;
      const pending = [...suspects.values()].filter((s) => now - s.since < LOST_CONFIRM_MS);
      if (pending.length > 0) this.nextLostCheckAt = Math.min(...pending.map((s) => s.since + LOST_CONFIRM_MS));
      if (confirmed.length === 0) return;
      const rescued = await bounded(rescueLostWorkers(this.pool.sql, this.tables, confirmed), STATEMENT_BOUND_MS, "rescuing lost workers' jobs");
      if (rescued.length > 0) {
        this.log.warn({ jobs: rescued.length, workers: confirmed }, "rescued jobs whose worker's session ended");
        this.emit("rescued", rescued.length);
      }
    } catch (error) {
      this.log.debug({ err: error }, "rescuing lost workers' jobs failed");
      this.pool.recoverFrom(error);
    }
  }

  private async rescue(): Promise<void> {
    try {
      if (performance.now() >= this.nextRescueFromHeadAt) {
        this.nextRescueFromHeadAt = performance.now() + RESCUE_FROM_HEAD_EVERY_MS;
        this.rescueFrom = null;
      }
      const { outcomes: rescued, next } = await bounded(rescueLapsedLeases(this.pool.sql, this.tables, this.rescueFrom), STATEMENT_BOUND_MS, "rescuing lapsed leases");
      this.rescueFrom = next;
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
