// pgq-only helpers for the studies: a backlog filled in SQL (millions of rows in one statement,
// not through the client), and a timed drain of part of it by a pgq worker.
import type { Sql } from "postgres";
import { Countdown, now } from "../clock.js";
import { connect } from "../../src/index.js";
import type { Worker, WorkOptions } from "../../src/types.js";
import { QUEUE } from "../systems/system.js";

/**
 * Adds `rows` jobs to pgq.jobs in slices, so that no one transaction grows huge: ready ones, or
 * due in `delayS` seconds; then VACUUM ANALYZE unless workers are already draining them.
 */
export async function fillBacklog(sql: Sql, rows: number, delayS = 0, vacuum = true): Promise<void> {
  const slice = 500_000;
  for (let from = 0; from < rows; from += slice) {
    await sql`
      insert into pgq.jobs (queue, payload, run_at)
      select ${QUEUE}, jsonb_build_object('i', g), now() + ${delayS} * interval '1 second'
      from generate_series(${from + 1}::int, ${Math.min(rows, from + slice)}::int) g`;
  }
  if (vacuum) await sql`vacuum analyze pgq.jobs`;
}

export interface DrainResult {
  jobs: number;
  seconds: number;
  rate: number;
  /** This process's CPU time (user and system) over the drain, per job handled. */
  cpuUsPerJob: number;
}

/**
 * Runs a pgq worker until it has handled `jobs` jobs (or `boundMs` passes); `sample` runs every
 * second; `started` sees the worker as soon as it exists.
 */
export async function timedDrain(
  url: string, options: WorkOptions, jobs: number, boundMs: number, sample?: () => void, started?: (worker: Worker) => void,
): Promise<DrainResult> {
  const q = await connect({ databaseUrl: url });
  const done = new Countdown(jobs);
  const timer = sample && setInterval(sample, 1000);
  try {
    const start = now();
    const cpu = process.cpuUsage();
    const worker = q.work(QUEUE, () => done.tick(), options);
    started?.(worker);
    await worker.ready;
    await done.wait(boundMs);
    const seconds = (now() - start) / 1000;
    const { user, system } = process.cpuUsage(cpu);
    await worker.stop();
    return { jobs: done.count, seconds, rate: done.count / seconds, cpuUsPerJob: (user + system) / done.count };
  } finally {
    clearInterval(timer);
    await q.close();
  }
}
