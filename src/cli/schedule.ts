// pgq schedule list|add|remove: the cron schedules every worker turns into jobs.
import type { Schedule } from "../types.js";
import { UsageError } from "./errors.js";
import { parseJson } from "./enqueue.js";
import { table } from "./format.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";

export interface ScheduleAddOptions {
  timezone?: string;
  catchUp?: "latest" | "none";
}

export async function scheduleListCommand(options: { json?: boolean }, globals: GlobalOptions): Promise<void> {
  const schedules = await withSession(globals, createLogger(globals, "warn"), ({ q }) => q.schedules());
  console.log(options.json ? JSON.stringify(schedules) : renderSchedules(schedules));
}

export async function scheduleAddCommand(
  name: string,
  cron: string,
  queue: string,
  json: string | undefined,
  options: ScheduleAddOptions,
  globals: GlobalOptions,
): Promise<void> {
  const payload = json === undefined ? null : parseJson(json, "the payload");
  await withSession(globals, createLogger(globals, "warn"), ({ q }) =>
    q.schedule(name, cron, queue, payload, { timezone: options.timezone, catchUp: options.catchUp }),
  );
}

export async function scheduleRemoveCommand(name: string, globals: GlobalOptions): Promise<void> {
  const removed = await withSession(globals, createLogger(globals, "warn"), ({ q }) => q.unschedule(name));
  if (!removed) throw new UsageError(`no schedule named ${JSON.stringify(name)}: \`pgq schedule list\` shows them`);
}

function renderSchedules(schedules: Schedule[]): string {
  if (schedules.length === 0) return "no schedules";
  return table(
    ["NAME", "CRON", "TIMEZONE", "QUEUE", "CATCH-UP", "NEXT TICK", "LAST TICK"],
    schedules.map((s) => [s.name, s.cron, s.timezone, s.queue, s.catchUp, s.nextTickAt.toISOString(), s.lastTickAt?.toISOString() ?? "-"]),
    [0, 1, 2, 3, 4, 5, 6],
  );
}
