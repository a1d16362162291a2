// pgq job | history | cancel: one job wherever it is, the recently finished ones, and cancelling.
import { InvalidArgumentError } from "commander";
import { FINAL_STATES, type FinalState } from "../job-state.js";
import type { JobInfo } from "../types.js";
import { EXIT_FAILURE, UsageError } from "./errors.js";
import { age, table } from "./format.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";

export interface HistoryCliOptions {
  queue?: string;
  state?: FinalState;
  since: number;
  limit: number;
  json?: boolean;
}

export interface CancelCliOptions {
  queue?: string;
}

export async function jobCommand(id: string, options: { json?: boolean }, globals: GlobalOptions): Promise<void> {
  const job = await withSession(globals, createLogger(globals, "warn"), ({ q }) => q.getJob(id));
  if (!job) {
    console.error(`pgq: job ${id} is not in pgq.jobs, pgq.history nor pgq.dead_jobs`);
    process.exitCode = EXIT_FAILURE;
    return;
  }
  console.log(options.json ? JSON.stringify(job) : renderJob(job));
}

export async function historyCommand(options: HistoryCliOptions, globals: GlobalOptions): Promise<void> {
  const [jobs, now] = await withSession(globals, createLogger(globals, "warn"), async ({ q }) => {
    const [{ now }] = await q.sql<[{ now: Date }]>`select now()`;
    return [await q.history({ queue: options.queue, state: options.state, sinceMs: options.since, limit: options.limit }), now.getTime()] as const;
  });
  if (options.json) {
    console.log(JSON.stringify(jobs));
    return;
  }
  if (jobs.length === 0) {
    console.log(`no job finished in the last ${age(options.since)}${options.queue === undefined ? "" : ` in ${options.queue}`}`);
    return;
  }
  const took = (j: JobInfo) => (j.startedAt && j.finishedAt ? age(j.finishedAt.getTime() - j.startedAt.getTime()) : "-");
  console.log(table(
    ["ID", "QUEUE", "STATE", "ATTEMPTS", "FINISHED", "TOOK", "WORKER"],
    jobs.map((j) => [j.id, j.queue, j.state, `${j.attempts}/${j.maxAttempts}`, `${age(now - j.finishedAt!.getTime())} ago`, took(j), j.worker ?? "-"]),
    [1, 2, 6],
  ));
}

export async function cancelCommand(ids: string[], options: CancelCliOptions, globals: GlobalOptions): Promise<void> {
  if ((ids.length === 0) === (options.queue === undefined)) {
    throw new UsageError("give job ids, or --queue QUEUE to cancel every job of a queue, not both");
  }
  await withSession(globals, createLogger(globals, "warn"), async ({ q }) => {
    if (options.queue !== undefined) {
      const n = await q.cancelQueue(options.queue);
      console.log(`cancelled ${n} job${n === 1 ? "" : "s"} of ${options.queue}`);
      return;
    }
    for (const id of ids) {
      const cancelled = await q.cancel(id);
      console.log(cancelled ? `cancelled ${id}` : `${id}: not waiting nor running (finished already, or no such job)`);
    }
  });
}

/** A final state, as --state takes it. */
export function finalState(value: string): FinalState {
  if (!(FINAL_STATES as readonly string[]).includes(value)) throw new InvalidArgumentError(`it must be one of ${FINAL_STATES.join(", ")}.`);
  return value as FinalState;
}

function renderJob(j: JobInfo): string {
  const at = (d: Date | null) => (d === null ? "-" : d.toISOString());
  const json = (v: unknown) => (v === null || v === undefined ? "-" : JSON.stringify(v));
  const lines = [
    ["id", j.id], ["queue", j.queue], ["state", j.state], ["attempts", `${j.attempts}/${j.maxAttempts}`],
    ["priority", String(j.priority)], ["group", j.groupKey ?? "-"], ["worker", j.worker ?? "-"],
    ["created", at(j.createdAt)], ["due", at(j.runAt)], ["first started", at(j.startedAt)], ["finished", at(j.finishedAt)],
    ["expires", at(j.expiresAt)], ["lease until", at(j.lockedUntil)],
    ["payload", json(j.payload)], ["progress", json(j.progress)], ["result", json(j.result)], ["last error", j.lastError?.split("\n", 1)[0] ?? "-"],
  ];
  const errors = (j.errors as { attempt?: number; at?: string; worker?: string; error?: string }[])
    .map((e) => `  attempt ${e.attempt ?? "?"} at ${e.at ?? "?"} on ${e.worker ?? "?"}: ${String(e.error ?? "").split("\n", 1)[0]}`);
  const width = Math.max(...lines.map(([k]) => k!.length));
  return [...lines.map(([k, v]) => `${k!.padEnd(width)}  ${v}`), ...(errors.length > 0 ? ["failed attempts:", ...errors] : [])].join("\n");
}
