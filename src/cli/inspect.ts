// pgq inspect [--json] [--watch] [--queue Q]
import type { Inspection, QueueLimits, RunningJobs } from "../admin/inspect.js";
import type { WorkerInfo } from "../admin/workers.js";
import type { RateLimit, Subscription } from "../types.js";
import { age, count, table } from "./format.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";

export interface InspectCommandOptions {
  json?: boolean;
  watch?: boolean;
  queue?: string;
}

const WATCH_EVERY_MS = 1000;

export async function inspectCommand(options: InspectCommandOptions, globals: GlobalOptions): Promise<void> {
  const log = createLogger(globals, "warn");
  await withSession(globals, log, async ({ q }) => {
    const show = async () => {
      const [inspection, subscriptions, workers] = await Promise.all([q.inspect({ queue: options.queue }), q.subscriptions(), q.workers()]);
      return options.json
        ? JSON.stringify({ ...inspection, subscriptions, workers })
        : [renderInspection(inspection), ...(inspection.runningJobs ? [renderRunningJobs(inspection.runningJobs, inspection.at)] : []),
           renderWorkers(workers), renderSubscriptions(subscriptions)].join("\n\n");
    };
    if (!options.watch) {
      console.log(await show());
      return;
    }
    // Ctrl-C ends the watch; the session closes on the way out.
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    const redraw = process.stdout.isTTY && !options.json;
    for (let done = false; !done; ) {
      const output = await show();
      // On a terminal the table redraws in place; elsewhere each refresh is appended.
      process.stdout.write(redraw ? `\x1b[H\x1b[2J${output}\n\nrefreshing every second; Ctrl-C to stop\n` : `${output}\n`);
      done = await Promise.race([stopped.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), WATCH_EVERY_MS))]);
    }
  });
}

export function renderInspection(inspection: Inspection): string {
  if (inspection.queues.length === 0) return "no jobs in any queue";
  let anyEstimate = false;
  const n = (value: number, estimated: boolean) => {
    anyEstimate ||= estimated;
    return estimated ? `~${count(value)}` : count(value);
  };
  const rows = inspection.queues.map((s) => {
    const est = (state: (typeof s.estimated)[number]) => s.estimated.includes(state);
    return [
      s.paused ? `${s.queue} (paused)` : s.queue,
      n(s.ready, est("ready")),
      n(s.scheduled, est("scheduled")),
      n(s.running, est("running")),
      n(s.retrying, est("retrying")),
      n(s.dead, est("dead")),
      age(s.oldestReadyAgeMs),
      n(s.diedLastMinute, est("diedLastMinute")),
      `${n(s.completedLastMinute, est("finished"))} / ${n(s.completedLastHour, est("finished"))}`,
      `${n(s.failedLastMinute, est("finished"))} / ${n(s.failedLastHour, est("finished"))}`,
      limits(s.limits),
    ];
  });
  const lines = [
    table(["QUEUE", "READY", "SCHEDULED", "RUNNING", "RETRYING", "DEAD", "OLDEST READY", "DIED (1 MIN)", "COMPLETED (1 MIN / 1 H)", "FAILED (1 MIN / 1 H)", "LIMITS"], rows),
    "",
  ];
  if (anyEstimate) lines.push(`~ estimated (from table statistics, or the recent rate for history): exact counts stop at ${count(inspection.exactUpTo)}`);
  lines.push("completed and failed count finished jobs in pgq.history (failed: died on their last attempt); retried attempts show live in `pgq work`");
  return lines.join("\n");
}

/** A queue's limits in a few words: "5 running, 3 per key, 50/1s, 10/1s per key", or "-". */
function limits(l: QueueLimits): string {
  const rate = (r: RateLimit) => `${r.count}/${r.perMs % 1000 === 0 ? `${r.perMs / 1000}s` : `${r.perMs}ms`}`;
  const parts = [
    l.concurrency === null ? null : `${l.concurrency} running`,
    l.keyConcurrency === null ? null : `${l.keyConcurrency} per key`,
    l.rateLimit === null ? null : rate(l.rateLimit),
    l.keyRateLimit === null ? null : `${rate(l.keyRateLimit)} per key`,
  ].filter((p) => p !== null);
  return parts.length === 0 ? "-" : parts.join(", ");
}

/** Progress values may be up to 4 KiB: a table cell shows their start. */
const PROGRESS_SHOWN = 60;

/** A queue's running jobs (`inspect --queue Q`): who runs each, since when, and how far it got. */
export function renderRunningJobs(running: RunningJobs, at: Date): string {
  if (running.jobs.length === 0) return "no running jobs";
  const progress = (value: unknown) => {
    if (value === null || value === undefined) return "-";
    const text = JSON.stringify(value);
    return [...text].length <= PROGRESS_SHOWN ? text : `${[...text].slice(0, PROGRESS_SHOWN - 3).join("")}...`;
  };
  const lines = [table(
    ["RUNNING JOB", "WORKER", "ATTEMPT", "FIRST STARTED", "LEASE ENDS", "PROGRESS"],
    running.jobs.map((j) => [
      j.id, j.worker ?? "-", `${j.attempt}/${j.maxAttempts}`,
      j.startedAt === null ? "-" : `${age(at.getTime() - j.startedAt.getTime())} ago`,
      j.lockedUntil < at ? `${age(at.getTime() - j.lockedUntil.getTime())} ago` : `in ${age(j.lockedUntil.getTime() - at.getTime())}`,
      progress(j.progress),
    ]),
    [0, 1, 5],
  )];
  if (running.more) lines.push(`the first ${count(running.jobs.length)} shown, those whose leases end first; more are running`);
  return lines.join("\n");
}

/**
 * Which worker holds each running job, and whether it is alive (its session marker is held):
 * a dead worker's jobs are about to be rescued; a live one's may still be hung (leases cover that).
 */
export function renderWorkers(workers: WorkerInfo[]): string {
  if (workers.length === 0) return "no registered workers";
  const jobs = (ids: string[]) => (ids.length === 0 ? "-" : ids.length <= 5 ? ids.join(", ") : `${ids.slice(0, 5).join(", ")} and ${count(ids.length - 5)} more`);
  return table(
    ["WORKER", "ALIVE", "QUEUES", "MODE", "RUNNING JOBS"],
    workers.map((w) => [w.name, w.alive ? "yes" : "no", w.queues.join(","), `${w.mode} x${w.concurrency}`, jobs(w.runningJobs)]),
    [0, 1, 2, 3, 4],
  );
}

/** Topic routing: which published topics reach which queue. */
export function renderSubscriptions(subscriptions: Subscription[]): string {
  if (subscriptions.length === 0) return "no topic subscriptions";
  return table(["QUEUE", "TOPIC PATTERN"], subscriptions.map((s) => [s.queue, s.pattern]), [0, 1]);
}
