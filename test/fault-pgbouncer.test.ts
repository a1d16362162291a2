// PgBouncer in transaction mode (issue 7, scenario 8). With pooler: "transaction", pgq prepares
// no statements, never LISTENs and keeps no session state, and the core scenarios pass through
// the pooler. Started in the normal mode behind it, pgq finds that LISTEN delivers nothing,
// warns once, and runs jobs by polling.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { pino } from "pino";
import postgres, { type Sql } from "postgres";
import { connect, type Job, type JobContext, type Queue } from "../src/index.js";
import { freshDatabase } from "./helpers/db.js";
import { effectsTable, type Effects } from "./helpers/effects.js";
import { pgbouncer, startPgbouncer } from "./helpers/pgbouncer.js";
import { runCli } from "./helpers/cli.js";
import { drained } from "./helpers/queue.js";
import { needs } from "./helpers/tools.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

// Set up at the top level, not in a before() hook: the helpers register after() hooks (stop
// PgBouncer, drop the database), which inside a before() hook would run as soon as it returns.
const requirement = needs(pgbouncer);
let url: string;
let db: Sql;
let q: Queue;
let effects: Effects;
if (!requirement.skip) {
  const { url: directUrl } = await freshDatabase();
  url = (await startPgbouncer(directUrl)).url(directUrl);
  db = postgres(directUrl, { max: 2, onnotice: () => {} });
  effects = await effectsTable(db);
  q = await connect({ databaseUrl: url, pooler: "transaction" });
  after(async () => {
    await q.close();
    await db.end();
  });
}

describe("behind PgBouncer in transaction mode", requirement, () => {

  test("poll-only mode: enqueue and enqueueMany through the pooler", async () => {
    const { id } = await q.enqueue("plain", { n: 1 }, { priority: 3 });
    const ids = await q.enqueueMany("plain", Array.from({ length: 100 }, (_, n) => ({ n })));
    const rows = await db`select id, payload from pgq.jobs where queue = 'plain' order by id`;
    assert.deepEqual(rows.map((r) => String(r.id)), [id, ...ids]);
    assert.deepEqual(rows[0]!.payload, { n: 1 });
  });

  test("poll-only mode: transaction-mode workers, every effect exactly once, a failed attempt's writes rolled back", async () => {
    const ids = await q.enqueueMany("tx", Array.from({ length: 300 }, (_, n) => ({ n })), { backoff: { baseMs: 10, maxMs: 50 } });
    let failures = 0;
    const handler = async (job: Job, ctx: JobContext) => {
      await effects.record(job, ctx);
      // Every 10th job fails its first attempt after writing: that write must roll back.
      if ((job.payload as { n: number }).n % 10 === 0 && job.attempts === 1) {
        failures++;
        throw new Error("first attempt fails");
      }
    };
    const workers = [q.work("tx", handler, { concurrency: 4, pollIntervalMs: 100 }), q.work("tx", handler, { concurrency: 4, pollIntervalMs: 100 })];
    await drained(db, "tx");
    await Promise.all(workers.map((w) => w.stop()));
    assert.equal(failures, 30);
    assert.deepEqual(await effects.outcome(ids), { lost: [], duplicated: [] });
  });

  test("poll-only mode: a timed-out transaction-mode attempt has its query cancelled on the right backend", async () => {
    const { id } = await q.enqueue("slow", {}, { maxAttempts: 1, timeoutMs: 300 });
    const worker = q.work("slow", async (_job: Job, ctx: JobContext) => void (await ctx.sql`select pg_sleep(30)`), { pollIntervalMs: 100 });
    const started = Date.now();
    const dead = await waitFor(async () => (await db`select errors from pgq.dead_jobs where id = ${id}`)[0], { timeoutMs: 20_000, what: "the slow job to die" });
    await worker.stop();
    assert.ok(Date.now() - started < 10_000, "the attempt ended long before its sleep would have");
    assert.match(JSON.stringify(dead.errors), /timed out|timeout/i);
  });

  test("poll-only mode: lease-mode workers run every job", async () => {
    const ids = await q.enqueueMany("lease", Array.from({ length: 300 }, (_, n) => ({ n })));
    const ran = new Map<string, number>();
    const worker = q.work("lease", (job: Job) => void ran.set(job.id, (ran.get(job.id) ?? 0) + 1), { mode: "lease", concurrency: 8, pollIntervalMs: 100 });
    await drained(db, "lease");
    await worker.stop();
    assert.deepEqual(ids.filter((id) => ran.get(id) !== 1), []);
  });

  test("poll-only mode: a failing job retries, then moves to dead_jobs", async () => {
    const { id } = await q.enqueue("poison", { bad: true }, { maxAttempts: 3, backoff: { baseMs: 10, maxMs: 20 } });
    const worker = q.work("poison", () => {
      throw new Error("always fails");
    }, { pollIntervalMs: 100 });
    const dead = await waitFor(async () => (await db`select attempts, errors from pgq.dead_jobs where id = ${id}`)[0], { what: "the job in dead_jobs" });
    await worker.stop();
    assert.equal(dead.attempts, 3);
    assert.equal((dead.errors as unknown[]).length, 3);
    assert.deepEqual(await q.deadJobs.retry({ queue: "poison" }), [id]);
  });

  test("poll-only mode: a delayed job runs at its time, not before", async () => {
    let lateMs: number | undefined;
    const worker = q.work("delayed", async (_job: Job, ctx: JobContext) => {
      const [row] = await ctx.sql`select extract(epoch from now() - run_at) * 1000 as late from pgq.jobs where queue = 'delayed'`;
      lateMs = Number(row!.late);
    }, { pollIntervalMs: 100 });
    await q.enqueue("delayed", {}, { delayMs: 1500 });
    await drained(db, "delayed", 10_000);
    await worker.stop();
    assert.ok(lateMs !== undefined && lateMs >= 0, `started ${lateMs} ms after its run_at (database time)`);
    assert.ok(lateMs < 5_000, `started ${lateMs} ms after its run_at`);
  });

  test("normal mode behind the pooler: pgq warns that LISTEN does not deliver, and polls", async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // Prepared statements are on in this mode: one connection, so the pooler mostly hands back the same server session.
    const normal: Queue = await connect({ databaseUrl: url, logger });
    after(() => normal.close());
    const worker = normal.work("normal", effects.record, { pollIntervalMs: 500 });
    await worker.ready;
    const warning = await waitFor(() => lines.find((l) => /LISTEN does not deliver notifications here/.test(l.msg)), {
      timeoutMs: 20_000,
      what: "the warning",
    });
    assert.equal(warning.level, 40);
    assert.match(warning.msg, /PgBouncer in transaction mode/);
    assert.match(warning.msg, /polling every 500 ms/);
    const ids = await q.enqueueMany("normal", [{}, {}, {}]);
    await drained(db, "normal", 10_000);
    await worker.stop();
    assert.deepEqual(await effects.outcome(ids), { lost: [], duplicated: [] });
    assert.equal(lines.filter((l) => /LISTEN does not deliver/.test(l.msg)).length, 1, "warned once");
  });

  test("the CLI through the pooler: pgq --pooler transaction enqueue and work", async () => {
    await db`create table cli_marks (job_id bigint, queue text, attempt int)`;
    const enqueued = await runCli(["--pooler", "transaction", "enqueue", "cli", '{"mark":true}'], { databaseUrl: url });
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const worker = pgqWork("cli", { handler: "test/fixtures/cli-handler.mjs", globals: ["--pooler", "transaction"], databaseUrl: url });
    // A process start, a connect through the pooler and a 2 s poll: generous on a loaded machine.
    await waitFor(async () => (await db`select from cli_marks where job_id = ${enqueued.stdout.trim()}`).length === 1, {
      what: "the job to run", timeoutMs: 30_000,
    }).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}; the worker said: ${(await worker.stop("SIGKILL")).stderr}`);
    });
    const r = await worker.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /LISTEN/, "poll-only: no LISTEN, so no warning");
  });
});
