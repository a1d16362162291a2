// Pool exhaustion: a pool smaller than the worker's concurrency, and handlers that take a second
// connection while they hold one. No deadlock, steady progress, every job exactly once, and a
// warning at work() that says how large the pool should be.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pino } from "pino";
import postgres, { type Sql } from "postgres";
import { connect, type Handler, type Queue } from "../src/index.js";
import { freshDatabase } from "./helpers/db.js";
import { effectsTable, type Effects } from "./helpers/effects.js";
import { waitFor } from "./helpers/wait.js";

const CONCURRENCY = 8;
const JOBS = 120;
const POOL_WARNING = /the pool passed to connect\(\) has max 2, not more than the worker's concurrency 8: .* at least 9/;

interface LogLine {
  level: number;
  msg: string;
}

/** Runs JOBS jobs through one worker; `makeHandler` gets the Queue, for handlers that use q.sql, and the effects table. */
async function drain(
  mode: "transaction" | "lease",
  pool: "caller's, max 2" | "pgq's",
  makeHandler: (q: Queue, effects: Effects) => Handler,
): Promise<{ warnings: string[]; ms: number; longestGapMs: number }> {
  const { url } = await freshDatabase();
  const db = postgres(url, { max: 2, onnotice: () => {} });
  const callers: Sql | undefined = pool === "pgq's" ? undefined : postgres(url, { max: 2, onnotice: () => {} });
  const lines: LogLine[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const q = await connect(callers ? { sql: callers, logger } : { databaseUrl: url, logger });
  after(async () => {
    await q.close();
    await Promise.all([db.end(), callers?.end()]);
  });
  const effects = await effectsTable(db);
  const ids = await q.enqueueMany("work", Array.from({ length: JOBS }, () => ({})));

  const started = performance.now();
  const completedAt: number[] = [];
  const failures: unknown[] = [];
  const worker = q.work("work", makeHandler(q, effects), { mode, concurrency: CONCURRENCY });
  worker.on("completed", () => completedAt.push(performance.now()));
  worker.on("failed", (_job, error) => failures.push(error));
  await waitFor(() => completedAt.length + failures.length >= JOBS, { timeoutMs: 60_000, what: "every job to finish (a deadlock would stop them)" });
  await worker.stop();
  const ms = performance.now() - started;

  assert.deepEqual(failures, [], "no attempt failed");
  const { lost, duplicated } = await effects.outcome(ids);
  assert.deepEqual(lost, [], "no job was lost");
  assert.deepEqual(duplicated, [], "no job ran twice");
  assert.equal((await db`select count(*)::int as n from pgq.jobs`)[0]!.n, 0, "no job was left running");
  const longestGapMs = Math.max(...completedAt.map((t, i) => t - (completedAt[i - 1] ?? started)));
  // Steady: a stalled pool shows as a long pause between completions, however loaded the machine.
  assert.ok(longestGapMs < 10_000, `${Math.round(longestGapMs)} ms without a completion`);
  const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
  console.log(`# ${mode}, ${pool} pool: ${JOBS} jobs in ${Math.round(ms)} ms, longest pause ${Math.round(longestGapMs)} ms`);
  return { warnings, ms, longestGapMs };
}

test("lease mode on the caller's pool of 2, concurrency 8, handlers holding a connection while they query", async () => {
  const { warnings } = await drain("lease", "caller's, max 2", (q, effects) => async (job, ctx) => {
    const sql = ctx.sql as Sql;
    if (Number(job.id) % 2 === 0) {
      // Holds a connection of ctx.sql, and queries through ctx.sql and q.sql meanwhile.
      await sql.begin(async (tx) => {
        await effects.record(job, { sql: tx });
        await sql`select pg_sleep(0.01)`;
        await q.sql`select 1`;
      });
    } else {
      // Holds a connection of q.sql, and queries through ctx.sql meanwhile.
      await q.sql.begin(async (tx) => {
        await tx`select pg_sleep(0.01)`;
        await effects.record(job, ctx);
      });
    }
  });
  assert.equal(warnings.filter((w) => POOL_WARNING.test(w)).length, 1, `one warning on how to size the pool: ${JSON.stringify(warnings)}`);
});

test("transaction mode on the caller's pool of 2, concurrency 8, handlers using the pool beside ctx.sql", async () => {
  const { warnings } = await drain("transaction", "caller's, max 2", (q, effects) => async (job, ctx) => {
    await effects.record(job, ctx);
    await q.sql`select count(*) from effects`;
    await q.sql.begin(async (tx) => {
      await tx`select pg_sleep(0.01)`;
      await ctx.sql`select count(*) from effects`;
    });
  });
  assert.equal(warnings.filter((w) => POOL_WARNING.test(w)).length, 1, `one warning on how to size the pool: ${JSON.stringify(warnings)}`);
});

test("lease mode on pgq's own pool, concurrency 8, handlers nesting ctx.sql", async () => {
  const { warnings } = await drain("lease", "pgq's", (_q, effects) => async (job, ctx) => {
    const sql = ctx.sql as Sql;
    await sql.begin(async (tx) => {
      await effects.record(job, { sql: tx });
      await sql`select pg_sleep(0.01)`;
    });
  });
  assert.deepEqual(warnings, [], "pgq sizes its own pools");
});
