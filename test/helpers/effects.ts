// The effects table: each run of a job's handler writes a row, so a test counts what really
// happened to every job. Written through ctx.sql, in transaction mode a row commits exactly when
// the job's completion does, so "exactly once" is a row count; in lease mode a re-run shows as a
// second row. Fixture handlers in other processes write the same table (test/fixtures).
import type { Sql } from "postgres";
import type { Job, JobContext } from "../../src/index.js";

export interface Tally {
  runs: number;
  /** The highest attempt number that left an effect. */
  lastAttempt: number;
}

export interface Effects {
  /** Records this run of the job through ctx.sql (or another handle the handler holds); a handler, or a step of one. */
  record(job: Job, ctx: Pick<JobContext, "sql">): Promise<void>;
  /** Runs per job id, of one queue or of all. */
  tally(queue?: string): Promise<Map<string, Tally>>;
  /** Of `ids`, the jobs that left no effect, and those that left more than one. */
  outcome(ids: string[]): Promise<{ lost: string[]; duplicated: string[] }>;
}

export async function effectsTable(db: Sql): Promise<Effects> {
  await db`
    create table effects (job_id bigint not null, queue text not null, attempt int not null,
                          at timestamptz not null default clock_timestamp())`;
  const tally = async (queue?: string) => {
    const rows = await db<{ job_id: string; runs: number; last_attempt: number }[]>`
      select job_id, count(*)::int as runs, max(attempt) as last_attempt from effects
      where ${queue ?? null}::text is null or queue = ${queue ?? null} group by job_id`;
    return new Map(rows.map((r) => [r.job_id, { runs: r.runs, lastAttempt: r.last_attempt }]));
  };
  return {
    async record(job, ctx) {
      await ctx.sql`insert into effects (job_id, queue, attempt) values (${job.id}, ${job.queue}, ${job.attempts})`;
    },
    tally,
    async outcome(ids) {
      const runs = await tally();
      return {
        lost: ids.filter((id) => !runs.has(id)),
        duplicated: ids.filter((id) => (runs.get(id)?.runs ?? 0) > 1),
      };
    },
  };
}
