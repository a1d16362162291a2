// pgq dead list | retry | purge
import type { DeadJob } from "../admin/dead-jobs.js";
import { EXIT_FAILURE, UsageError } from "./errors.js";
import { age, count, table } from "./format.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";

export interface DeadListOptions {
  queue?: string;
  limit: number;
  json?: boolean;
}

export interface DeadSelection {
  queue?: string;
  id?: string[];
}

export interface DeadPurgeOptions extends DeadSelection {
  olderThan?: number;
  yes?: boolean;
}

export async function deadListCommand(options: DeadListOptions, globals: GlobalOptions): Promise<void> {
  // Ages count on the database's clock, as died_at does: this machine's may be off.
  const [jobs, now] = await withSession(globals, createLogger(globals, "warn"), async ({ q }) => {
    const [{ now }] = await q.sql<[{ now: Date }]>`select now()`;
    return [await q.deadJobs.list({ queue: options.queue, limit: options.limit }), now.getTime()] as const;
  });
  if (options.json) {
    console.log(JSON.stringify(jobs));
    return;
  }
  if (jobs.length === 0) {
    console.log(options.queue === undefined ? "no dead jobs" : `no dead jobs in ${options.queue}`);
    return;
  }
  const columns = process.stdout.columns ?? 120;
  const rows = jobs.map((j) => [j.id, j.queue, `${j.attempts}/${j.maxAttempts}`, `${age(now - j.diedAt.getTime())} ago`, lastErrorLine(j)]);
  const text = table(["ID", "QUEUE", "ATTEMPTS", "DIED", "LAST ERROR"], rows, [1, 4]);
  console.log(
    text
      .split("\n")
      .map((line) => (process.stdout.isTTY && line.length > columns ? `${line.slice(0, columns - 1)}…` : line))
      .join("\n"),
  );
  if (jobs.length === options.limit) console.log(`\nthe ${count(jobs.length)} most recent; --limit shows more, --json shows payloads and every error`);
}

export async function deadRetryCommand(options: DeadSelection, globals: GlobalOptions): Promise<void> {
  const retried = await withSession(globals, createLogger(globals, "warn"), ({ q }) =>
    q.deadJobs.retry({ queue: options.queue, ids: options.id }),
  );
  console.log(`moved ${count(retried.length)} dead job${retried.length === 1 ? "" : "s"} back to the queue${retried.length ? `: ${abbreviate(retried)}` : ""}`);
  const left = (options.id ?? []).filter((id) => !retried.includes(id));
  if (left.length > 0) {
    console.error(`pgq: not retried (no such dead job${options.queue ? " in that queue" : ""}, or a live job holds its dedupe key): ${left.join(", ")}`);
    process.exitCode = EXIT_FAILURE;
  }
}

export async function deadPurgeCommand(options: DeadPurgeOptions, globals: GlobalOptions): Promise<void> {
  const everything = options.queue === undefined && options.id === undefined && options.olderThan === undefined;
  if (everything && !options.yes) {
    throw new UsageError("this would delete every dead job: add --yes to confirm, or narrow it with --queue, --id or --older-than");
  }
  const purged = await withSession(globals, createLogger(globals, "warn"), ({ q }) =>
    q.deadJobs.purge({ queue: options.queue, ids: options.id, olderThanMs: options.olderThan, all: everything }),
  );
  console.log(`deleted ${count(purged)} dead job${purged === 1 ? "" : "s"}`);
}

/**
 * The last attempt's one-line summary (name, code, message), or last_error's first line for older
 * rows; for a job that expired, that it did, and the error of any attempt before.
 */
function lastErrorLine(job: DeadJob): string {
  const last = job.errors.at(-1) as { error?: unknown } | undefined;
  const error = typeof last?.error === "string" ? last.error.split("\n", 1)[0]! : (job.lastError ?? "").split("\n", 1)[0]!;
  if (job.reason !== "expired") return error;
  return error === "" ? "expired: not started before its expiry" : `expired: not started again before its expiry; ${error}`;
}

function abbreviate(ids: string[]): string {
  return ids.length <= 20 ? ids.join(", ") : `${ids.slice(0, 20).join(", ")} and ${count(ids.length - 20)} more`;
}
