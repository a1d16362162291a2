// How long a failed job waits before its next attempt. A pure function, so it is tested
// without a database; the worker adds the delay to the database's now(), never its own clock.
//
// Retry n (after failed attempt n) waits about baseMs * 2^(n-1), capped at maxMs, spread
// over +/-25% so jobs that failed together do not retry together. With the defaults
// (src/job-defaults.ts: baseMs 1000, maxMs one hour):
//
//   after attempt   1    2    3    4     5     6     7      8      9      10     11     12+
//   nominal delay   1s   2s   4s   8s    16s   32s   64s    128s   256s   512s   1024s  1h (cap)
//
// so a job with the default 25 attempts keeps retrying for about 14 hours before it is dead.

import { exponentialMs } from "./backoff.js";

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

const JITTER = 0.25;

export function retryDelayMs(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const nominal = exponentialMs(attempt, backoff);
  const jittered = nominal * (1 - JITTER + 2 * JITTER * random());
  return Math.round(Math.min(backoff.maxMs, jittered));
}
