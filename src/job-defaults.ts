// A job's defaults, defined once: enqueue, publish, cron ticks, the CLI's help and the public
// types read them here (the limits on names, keys and payloads are in validate.ts). The database
// necessarily repeats the numbers, as pgq.jobs' column defaults and in pgq.enqueue (migrations
// are SQL); test/job-defaults.test.ts checks that a migrated database agrees with both files.
import type { Backoff } from "./retry-policy.js";

/** Lower runs first. */
export const DEFAULT_PRIORITY = 0;

/** Attempts before a job moves to dead_jobs. */
export const DEFAULT_MAX_ATTEMPTS = 25;

/** Retry n waits about baseMs * 2^(n-1), capped at maxMs (src/retry-policy.ts has the table).
 *  A job given only a baseMs above the default maxMs gets maxMs = baseMs. */
export const DEFAULT_BACKOFF: Readonly<Backoff> = { baseMs: 1000, maxMs: 60 * 60 * 1000 };

