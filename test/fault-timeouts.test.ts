// Server-side timeouts hit inside a handler's transaction (transaction mode): statement_timeout
// and idle_in_transaction_session_timeout. The handler's writes roll back, the failure is
// recorded in a fresh transaction, the job is retried and succeeds, and the jobs after it run
// fine on the same worker: the slot's connection is not left poisoned.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import postgres from "postgres";
import { connect, type Job, type JobContext } from "../src/index.js";
import { freshDatabase } from "./helpers/db.js";
import { effectsTable, type Effects } from "./helpers/effects.js";
import { drained } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const FOLLOWING = 10;
/** Long enough to read last_error before the retry, however loaded the machine. */
const RETRY_AFTER = { baseMs: 3000, maxMs: 3000 };

interface Setup {
  url: string;
  db: postgres.Sql;
  effects: Effects;
}

async function setup(databaseSettings: string[] = []): Promise<Setup> {
  const { url, name } = await freshDatabase();
  const db = postgres(url, { max: 2, onnotice: () => {} });
  after(() => db.end());
  for (const setting of databaseSettings) await db.unsafe(`alter database ${name} set ${setting}`);
  return { url, db, effects: await effectsTable(db) };
}

/** Runs `faulty` jobs that fail on their first attempt, then FOLLOWING plain ones, on one slot. */
async function run(
  { url, db, effects }: Setup,
  faulty: Record<string, (job: Job, ctx: JobContext) => Promise<void>>,
) {
  const q = await connect({ databaseUrl: url });
  after(() => q.close());
  const faultyIds = new Map<string, string>();
  for (const name of Object.keys(faulty)) faultyIds.set((await q.enqueue("work", { faulty: name }, { backoff: RETRY_AFTER })).id, name);
  const following = await q.enqueueMany("work", Array.from({ length: FOLLOWING }, () => ({})));
  // The backend each successful attempt ran on, and its statement_timeout then.
  const sessions: { pid: number; statementTimeout: string }[] = [];
  const started = performance.now();
  const worker = q.work("work", async (job, ctx) => {
    await effects.record(job, ctx);
    const { faulty: name } = job.payload as { faulty?: string };
    if (name && job.attempts === 1) await faulty[name]!(job, ctx);
    const [session] = await ctx.sql<[{ pid: number; statement_timeout: string }]>`
      select pg_backend_pid() as pid, current_setting('statement_timeout') as statement_timeout, pg_sleep(0.3)`;
    sessions.push({ pid: session.pid, statementTimeout: session.statement_timeout });
  }, { mode: "transaction", concurrency: 1 });

  // Each faulty job's failure is recorded, with its cause, while it waits for its retry.
  const recorded = new Map<string, { lastError: string; outcome: string; afterMs: number }>();
  const failures: string[] = [];
  worker.on("failed", (job, _error, outcome) => {
    failures.push(job.id);
    void db<[{ last_error: string }?]>`select last_error from pgq.jobs where id = ${job.id}`.then(([row]) => {
      recorded.set(job.id, { lastError: row?.last_error ?? "", outcome, afterMs: performance.now() - started });
    });
  });
  await drained(db, undefined, 60_000);
  await worker.stop();

  const tally = await effects.tally();
  // The first attempt's insert rolled back: each faulty job has only its second attempt's row.
  for (const id of faultyIds.keys()) assert.deepEqual(tally.get(id), { runs: 1, lastAttempt: 2 });
  assert.deepEqual(following.filter((id) => tally.get(id)?.runs !== 1 || tally.get(id)?.lastAttempt !== 1), [], "every following job ran once");
  assert.equal(tally.size, faultyIds.size + FOLLOWING, "no other effect");
  assert.deepEqual(failures.sort(), [...faultyIds.keys()].sort(), "only the faulty jobs failed, once each");
  assert.equal((await db`select count(*)::int as n from pgq.dead_jobs`)[0]!.n, 0);
  assert.deepEqual(sessions.map((s) => s.statementTimeout), sessions.map(() => "0"), "no session setting outlived its transaction");
  await waitFor(() => recorded.size === faultyIds.size, { what: "the recorded failures" });
  return { recorded: new Map([...recorded].map(([id, r]) => [faultyIds.get(id)!, r])), sessions };
}

test("statement_timeout inside the handler's transaction, set locally or for the session", async () => {
  const sleepPastTimeout = (set: string) => async (_job: Job, ctx: JobContext) => {
    await ctx.sql.unsafe(`${set} statement_timeout = '100ms'`);
    await ctx.sql`select pg_sleep(5)`;
  };
  const { recorded, sessions } = await run(await setup(), {
    local: sleepPastTimeout("set local"),
    session: sleepPastTimeout("set"),
  });
  for (const [name, r] of recorded) {
    assert.equal(r.outcome, "retrying", name);
    assert.match(r.lastError, /canceling statement due to statement timeout/, name);
  }
  // Not poisoned: one connection ran every job after the two that timed out on it.
  assert.equal(new Set(sessions.map((s) => s.pid)).size, 1, "the slot kept its connection");
  console.log(`# statement_timeout: failures recorded ${[...recorded.values()].map((r) => Math.round(r.afterMs)).join(", ")} ms after the start`);
});

test("idle_in_transaction_session_timeout ends the handler's session", async () => {
  const { recorded, sessions } = await run(await setup(["idle_in_transaction_session_timeout = '500ms'"]), {
    idle: async () => {
      await new Promise((r) => setTimeout(r, 2000));
    },
  });
  const r = recorded.get("idle")!;
  assert.equal(r.outcome, "retrying");
  assert.match(r.lastError, /idle_in_transaction_session_timeout/);
  // Recorded when the server ended the session, not when the attempt's own bound ran out.
  assert.ok(r.afterMs < 20_000, `failure recorded after ${Math.round(r.afterMs)} ms`);
  // The killed connection was replaced once; its successor ran every job after.
  assert.equal(new Set(sessions.map((s) => s.pid)).size, 1, "one connection after the killed one");
  console.log(`# idle_in_transaction_session_timeout: failure recorded ${Math.round(r.afterMs)} ms after the start: ${r.lastError}`);
});
