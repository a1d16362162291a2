import assert from "node:assert/strict";
import { test } from "node:test";
import type { Job, JobContext } from "../src/index.js";
import { effectsTable } from "./helpers/effects.js";
import { drained, testQueue } from "./helpers/queue.js";
import { nextEvent, waitFor } from "./helpers/wait.js";

const { q, db } = await testQueue();

async function remaining(queue: string): Promise<number> {
  const [row] = await db`select count(*)::int as n from pgq.jobs where queue = ${queue}`;
  return row!.n;
}

test("one worker runs jobs FIFO within a priority, lower priorities first", async () => {
  await q.enqueueMany("fifo", [{ n: 1 }, { n: 2 }], { priority: 5 });
  await q.enqueueMany("fifo", [{ n: 3 }, { n: 4 }]);
  await q.enqueue("fifo", { n: 5 }, { priority: -1 });
  await q.enqueue("fifo", { n: 6 }, { priority: 5 });
  await q.enqueue("fifo", { n: 7 });
  const order: number[] = [];
  const worker = q.work("fifo", (job: Job<{ n: number }>) => void order.push(job.payload.n));
  await waitFor(() => order.length === 7, { what: "seven jobs" });
  await worker.stop();
  assert.deepEqual(order, [5, 3, 4, 7, 1, 2, 6]);
});

test("the handler sees the job and a context; a finished job leaves pgq.jobs", async () => {
  const { id } = await q.enqueue("shape", { hello: "world" }, { priority: 2, maxAttempts: 3, groupKey: "g" });
  let seen: Job | undefined;
  let signal: AbortSignal | undefined;
  const worker = q.work("shape", async (job, ctx) => {
    seen = job;
    signal = ctx.signal;
    ctx.log.info("inside the handler");
    const [row] = await ctx.sql`select 1 as one`;
    assert.equal(row!.one, 1);
  });
  await nextEvent(worker, "completed");
  await worker.stop();
  assert.deepEqual({ ...seen, createdAt: undefined }, {
    id, queue: "shape", payload: { hello: "world" }, attempts: 1, maxAttempts: 3, priority: 2, groupKey: "g", createdAt: undefined,
  });
  assert.ok(seen!.createdAt instanceof Date);
  assert.equal(signal!.aborted, false);
  assert.equal(await remaining("shape"), 0);
});

test("effects exactly once: 2 workers x 8, first attempts that throw after writing", async () => {
  const effects = await effectsTable(db);
  const ids = await q.enqueueMany("exactly-once", Array.from({ length: 400 }, (_, i) => ({ i })), {
    backoff: { baseMs: 5, maxMs: 20 },
  });
  const handler = async (job: Job, ctx: JobContext) => {
    await effects.record(job, ctx);
    // A failure after the write: the write must roll back with the attempt.
    if ((job.payload as { i: number }).i % 3 === 0 && job.attempts === 1) throw new Error("fails after its write");
  };
  const workers = [1, 2].map(() => q.work("exactly-once", handler, { concurrency: 8 }));
  await drained(db, "exactly-once", 60_000);
  await Promise.all(workers.map((w) => w.stop()));
  assert.deepEqual(await effects.outcome(ids), { lost: [], duplicated: [] }, "every job's effect exists exactly once");
  const tally = await effects.tally();
  assert.equal(tally.size, 400);
  ids.forEach((id, i) => assert.equal(tally.get(id)!.lastAttempt, i % 3 === 0 ? 2 : 1));
});

test("a job that keeps failing retries with backoff, then moves to dead_jobs with its error history", async () => {
  const { id } = await q.enqueue("doomed", { n: 1 }, { maxAttempts: 3, backoff: { baseMs: 20, maxMs: 50 } });
  let attempts = 0;
  const worker = q.work("doomed", (job) => {
    attempts = job.attempts;
    throw new Error(`attempt ${job.attempts} went wrong`);
  });
  const [, , outcome] = await waitFor(async () => {
    const [, , o] = await nextEvent<[Job, unknown, string]>(worker, "failed");
    return o === "dead" ? [null, null, o] : undefined;
  }, { what: "the job to die" });
  await worker.stop();
  assert.equal(outcome, "dead");
  assert.equal(attempts, 3);
  assert.equal(await remaining("doomed"), 0);
  const [dead] = await db`select * from pgq.dead_jobs where id = ${id}`;
  assert.equal(dead!.attempts, 3);
  assert.match(dead!.last_error, /attempt 3 went wrong/);
  assert.deepEqual(
    (dead!.errors as { attempt: number; error: string }[]).map((e) => [e.attempt, e.error.split("\n")[0]]),
    [1, 2, 3].map((n) => [n, `Error: attempt ${n} went wrong`]),
  );
  assert.deepEqual(dead!.payload, { n: 1 });
});

test("a failed attempt waits for its backoff, on database time", async () => {
  const { id } = await q.enqueue("backoff", {}, { backoff: { baseMs: 60_000, maxMs: 60_000 } });
  const worker = q.work("backoff", () => {
    throw new Error("later");
  });
  await nextEvent(worker, "failed");
  await worker.stop();
  const [row] = await db`select attempts, extract(epoch from run_at - now()) as wait, last_error from pgq.jobs where id = ${id}`;
  assert.equal(row!.attempts, 1);
  assert.ok(Number(row!.wait) > 40 && Number(row!.wait) <= 60, `retry in ${row!.wait}s`);
  assert.match(row!.last_error, /later/);
});

test("stop() stops claiming, waits for in-flight jobs, and loses none", async () => {
  await q.enqueueMany("slow", [{ n: 1 }, { n: 2 }, { n: 3 }]);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started = 0;
  const worker = q.work("slow", async () => {
    started++;
    await gate;
  }, { concurrency: 2 });
  await waitFor(() => started === 2, { what: "two jobs to start" });
  let stopped = false;
  const stopping = worker.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(stopped, false, "stop() waits for the running jobs");
  release();
  await stopping;
  assert.equal(started, 2, "no job was claimed after stop()");
  assert.equal(await remaining("slow"), 1);
  const [left] = await db`select locked_until, attempts from pgq.jobs where queue = 'slow'`;
  assert.deepEqual([left!.locked_until, left!.attempts], [null, 0]);
});

for (const mode of ["lease", "transaction"] as const) {
  test(`${mode} mode: jobs claimed ahead of a free slot are handed back unspent on stop()`, async () => {
    const queue = `ahead-${mode}`;
    await q.enqueueMany(queue, Array.from({ length: 3000 }, (_, i) => ({ i })));
    let claimed = 0;
    let started = 0;
    const worker = q.work(queue, () => new Promise((r) => setTimeout(r, 1)), { mode, concurrency: 2 });
    worker.on("claimed", (n) => (claimed += n));
    worker.on("started", () => started++);
    // Short jobs make the worker claim ahead; stop once it holds more than it runs.
    await waitFor(() => claimed > started + 2, { timeoutMs: 20_000, what: "jobs claimed ahead of the slots" });
    await worker.stop();
    const [left] = await db<[{ n: number; spent: number; held: number }]>`
      select count(*)::int as n, count(*) filter (where attempts > 0)::int as spent,
             count(*) filter (where locked_until is not null)::int as held
      from pgq.jobs where queue = ${queue}`;
    assert.equal(left.n, 3000 - started, "every job that did not start is still queued");
    assert.deepEqual([left.spent, left.held], [0, 0], "none of them holds a lease or spent an attempt");
  });
}

test("an idle worker is woken by NOTIFY, not by its poll", async () => {
  const worker = q.work("wake", () => undefined, { pollIntervalMs: 600_000 });
  await worker.ready;
  const started = nextEvent(worker, "started", 5_000);
  await q.enqueue("wake", {});
  await started;
  await worker.stop();
});

test("a terminated LISTEN connection comes back, and jobs run promptly", async () => {
  const worker = q.work("relisten", () => undefined, { pollIntervalMs: 600_000 });
  await worker.ready;
  const listeners = () => db`select pid from pg_stat_activity where datname = current_database() and query ilike 'listen%'`;
  const listener = await waitFor(async () => (await listeners())[0], { what: "the LISTEN connection" });
  await db`select pg_terminate_backend(${listener!.pid})`;
  // A job enqueued while the worker was deaf runs when it reconnects.
  await q.enqueue("relisten", { gap: true });
  await nextEvent(worker, "completed", 10_000);
  await waitFor(async () => (await listeners()).some((l) => l.pid !== listener!.pid), { what: "a new LISTEN connection" });
  const started = nextEvent(worker, "started", 5_000);
  await q.enqueue("relisten", { after: true });
  await started;
  await worker.stop();
});

test("stats() counts each state per queue", async () => {
  await q.enqueueMany("stats", [{}, {}]);
  await q.enqueue("stats", {}, { delayMs: 3_600_000 });
  const { id: retrying } = await q.enqueue("stats", {});
  const { id: running } = await q.enqueue("stats", {});
  await db`update pgq.jobs set attempts = 1, run_at = now() + interval '1 hour' where id = ${retrying}`;
  await db`update pgq.jobs set attempts = 1, lease_token = gen_random_uuid(), locked_until = now() + interval '1 minute' where id = ${running}`;
  await db`update pgq.jobs set run_at = now() - interval '10 seconds' where queue = 'stats' and locked_until is null and attempts = 0 and run_at <= now()`;
  await db`insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms, errors, created_at)
           values (-1, 'stats', '{}', 0, 1, 1, 0, 0, '[]', now())`;
  const stats = (await q.stats()).queues.find((s) => s.queue === "stats");
  assert.ok(stats);
  const { oldestReadyAgeMs, ...counts } = stats;
  assert.deepEqual(counts, { queue: "stats", ready: 2, scheduled: 1, running: 1, retrying: 1, dead: 1 });
  assert.ok(oldestReadyAgeMs! >= 10_000 && oldestReadyAgeMs! < 20_000, `oldest ready age ${oldestReadyAgeMs}`);
});
