// The scheduler: turns due cron ticks into jobs. Every client with workers runs it
// (maintenance.ts); the database makes sure that each tick gets exactly one job however many
// processes do.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { bounded, STATEMENT_BOUND_MS } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import { parseCron, tickAfter, tickAtOrBefore } from "../admin/schedules.js";
import { limitOf } from "../db/session-plans.js";
import type { Tables } from "../db/tables.js";
import { advanceSchedule } from "../sql/advance-schedule.js";
import type { CatchUpPolicy } from "../types.js";

/** The longest a process goes without looking for new or changed schedules. */
const RECHECK_MS = 1_000;
/** With catchUp "none", a tick found later than this, or after a later tick has come due too,
 *  was missed (no worker ran at its time) and is skipped. */
export const MISSED_AFTER_MS = 10_000;
const BATCH = 100;

interface DueSchedule {
  name: string;
  cron: string;
  timezone: string;
  catch_up: CatchUpPolicy;
  next_tick_at: Date;
  /** next_tick_at as text, compared exactly in the compare-and-set (a Date keeps only ms). */
  expected: string;
  now: Date;
  due_in_ms: number;
}

/**
 * Enqueues the job of every schedule that is due, by database time. Several ticks due at once
 * (no worker ran for a while) get one job between them: for the latest of them, or, with
 * catchUp "none", none at all: then a tick runs only if it is the only one due and less than
 * MISSED_AFTER_MS late. Returns how long until the next look is needed.
 */
export async function runDueSchedules(sql: Sql, t: Tables, log: Logger): Promise<{ enqueued: string[]; nextInMs: number }> {
  const rows = await sql<DueSchedule[]>`
    select name, cron, timezone, catch_up, next_tick_at, next_tick_at::text as expected, now() as now,
           extract(epoch from next_tick_at - now()) * 1000 as due_in_ms
    from ${t.schedules}
    where next_tick_at <= now() + ${RECHECK_MS} * interval '1 millisecond'
    order by next_tick_at
    limit ${limitOf(sql, BATCH)}`;
  const enqueued: string[] = [];
  let nextInMs = rows.length === BATCH ? 0 : RECHECK_MS;
  for (const row of rows) {
    const dueInMs = Number(row.due_in_ms);
    if (dueInMs > 0) {
      nextInMs = Math.min(nextInMs, dueInMs);
      continue;
    }
    try {
      const id = await enqueueTick(sql, t, row, log);
      if (id) enqueued.push(id);
    } catch (error) {
      log.error({ err: error, schedule: row.name }, "could not enqueue the schedule's tick; fix or remove the schedule");
    }
  }
  return { enqueued, nextInMs };
}

async function enqueueTick(sql: Sql, t: Tables, row: DueSchedule, log: Logger): Promise<string | undefined> {
  const cron = parseCron(row.cron, row.timezone);
  const tick = tickAtOrBefore(cron, row.now)!;
  const next = tickAfter(cron, row.now);
  const lateMs = row.now.getTime() - tick.getTime();
  const missedSome = tick.getTime() !== row.next_tick_at.getTime();
  const enqueue = row.catch_up === "latest" || (!missedSome && lateMs <= MISSED_AFTER_MS);
  const id = await advanceSchedule(sql, t.schema, { schedule: row.name, expected: row.expected, tick, next, enqueue });
  if (id) log.debug({ schedule: row.name, tick, jobId: id, lateMs }, "enqueued the schedule's job for its tick");
  else if (!enqueue) log.info({ schedule: row.name, tick, lateMs }, "skipped the schedule's missed ticks (catchUp: none)");
  return id;
}

/** The maintenance task: called often, it goes to the database only when a tick may be due,
 *  or every RECHECK_MS for new schedules. */
export class Scheduler {
  private nextRunAt = 0;

  constructor(
    private readonly pool: OwnPool,
    private readonly t: Tables,
    private readonly log: Logger,
  ) {}

  async runIfDue(): Promise<void> {
    if (performance.now() < this.nextRunAt) return;
    try {
      const { nextInMs } = await bounded(runDueSchedules(this.pool.sql, this.t, this.log), STATEMENT_BOUND_MS, "enqueuing due schedules");
      this.nextRunAt = performance.now() + nextInMs;
    } catch (error) {
      this.log.warn({ err: error }, "looking for due schedules failed; trying again");
      this.pool.recoverFrom(error);
      this.nextRunAt = performance.now() + RECHECK_MS;
    }
  }
}
