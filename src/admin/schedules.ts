// Cron schedules: defining, removing and listing them. The scheduler (scheduler.ts) turns
// their ticks into jobs; croner reads the cron expressions.
import { Cron } from "croner";
import type { Sql } from "postgres";
import { ValidationError } from "../errors.js";
import type { Tables } from "../db/tables.js";
import type { CatchUpPolicy, Schedule, ScheduleOptions } from "../types.js";
import { assertKey, assertQueueName, serializePayload } from "../validate.js";

const CATCH_UP_POLICIES: readonly CatchUpPolicy[] = ["latest", "none"];

/** A parsed cron expression: 5 fields, or 6 with seconds first, read in `timezone`. */
export function parseCron(expression: string, timezone: string): Cron {
  return new Cron(expression, { mode: "5-or-6-parts", timezone, paused: true });
}

/** The first tick strictly after `after`. */
export function tickAfter(cron: Cron, after: Date): Date {
  const next = cron.nextRun(after);
  if (!next) throw new Error(`cron expression ${JSON.stringify(cron.getPattern())} has no tick after ${after.toISOString()}`);
  return next;
}

/** The last tick at or before `at` (croner's previousRuns excludes a tick exactly at its reference). */
export function tickAtOrBefore(cron: Cron, at: Date): Date | undefined {
  return cron.previousRuns(1, new Date(at.getTime() + 1))[0];
}

/** Checks a schedule's definition before any SQL; returns what is stored. */
export function prepareSchedule(name: unknown, expression: unknown, queue: unknown, payload: unknown, options: ScheduleOptions, maxPayloadBytes: number) {
  assertKey(name, "schedule name");
  assertQueueName(queue);
  if (options === null || typeof options !== "object") throw new ValidationError("INVALID_OPTION", "schedule options must be an object");
  const { timezone = "UTC", catchUp = "latest" } = options;
  if (typeof timezone !== "string" || !isTimeZone(timezone)) {
    throw new ValidationError("INVALID_OPTION", `timezone ${JSON.stringify(timezone)} is not an IANA time zone (e.g. "UTC", "Europe/Paris")`);
  }
  if (!CATCH_UP_POLICIES.includes(catchUp)) {
    throw new ValidationError("INVALID_OPTION", `catchUp must be "latest" or "none" (got ${JSON.stringify(catchUp)})`);
  }
  if (typeof expression !== "string") throw new ValidationError("INVALID_OPTION", "the cron expression must be a string");
  let cron: Cron;
  try {
    cron = parseCron(expression, timezone);
  } catch (error) {
    throw new ValidationError(
      "INVALID_OPTION",
      `cron expression ${JSON.stringify(expression)} is invalid (${(error as Error).message}); use 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first`,
    );
  }
  if (!cron.nextRun()) throw new ValidationError("INVALID_OPTION", `cron expression ${JSON.stringify(expression)} never fires`);
  const payloadText = serializePayload(payload === undefined ? null : payload, maxPayloadBytes);
  return { name, expression, cron, queue, payloadText, timezone, catchUp };
}

function isTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates the schedule, or updates the one with this name. Calling it again unchanged, as an
 * application does at every start, keeps the schedule's place: its next tick stays, so a tick
 * missed while nothing ran is still caught up. A new expression or time zone starts from the
 * next tick after now.
 */
export async function defineSchedule(sql: Sql, t: Tables, s: ReturnType<typeof prepareSchedule>): Promise<void> {
  const [row] = await sql<{ now: Date }[]>`select now()`;
  const firstTick = tickAfter(s.cron, row!.now);
  await sql`
    insert into ${t.schedules} (name, cron, timezone, queue, payload, catch_up, next_tick_at)
    values (${s.name}, ${s.expression}, ${s.timezone}, ${s.queue}, ${s.payloadText}::text::jsonb, ${s.catchUp}, ${firstTick})
    on conflict (name) do update
    set cron = excluded.cron, timezone = excluded.timezone, queue = excluded.queue, payload = excluded.payload,
        catch_up = excluded.catch_up, updated_at = now(),
        next_tick_at = case when (${t.schedules}.cron, ${t.schedules}.timezone) = (excluded.cron, excluded.timezone)
                            then ${t.schedules}.next_tick_at else excluded.next_tick_at end`;
}

/** Removes the schedule; false if there was none. Jobs it already enqueued stay. */
export async function removeSchedule(sql: Sql, t: Tables, name: unknown): Promise<boolean> {
  assertKey(name, "schedule name");
  const deleted = await sql`delete from ${t.schedules} where name = ${name}`;
  return deleted.count === 1;
}

export async function listSchedules(sql: Sql, t: Tables): Promise<Schedule[]> {
  const rows = await sql<
    { name: string; cron: string; timezone: string; queue: string; payload: unknown; catch_up: CatchUpPolicy; next_tick_at: Date; last_tick_at: Date | null }[]
  >`select name, cron, timezone, queue, payload, catch_up, next_tick_at, last_tick_at from ${t.schedules} order by name`;
  return rows.map((r) => ({
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    queue: r.queue,
    payload: r.payload,
    catchUp: r.catch_up,
    nextTickAt: r.next_tick_at,
    lastTickAt: r.last_tick_at,
  }));
}
