import assert from "node:assert/strict";
import { test } from "node:test";
import { tables } from "../src/db/tables.js";
import { ValidationError, type Job, type JobContext } from "../src/index.js";
import { claimJobs } from "../src/sql/claim.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db } = await testQueue();

interface Start {
  runAt: Date;
  startedAt: Date;
}

/** A handler that records, by database time, when each job was due and when it started. */
function recordingHandler(starts: Start[]) {
  return async (job: Job, ctx: JobContext) => {
    const [row] = await ctx.sql`select run_at, clock_timestamp() as started_at from pgq.jobs where id = ${job.id}`;
    starts.push({ runAt: row!.run_at, startedAt: row!.started_at });
  };
}

async function dbNow(): Promise<Date> {
  const [row] = await db`select now() as now`;
  return row!.now;
}

test("a delayed job never starts before its time, by the database's clock", async () => {
  const starts: Start[] = [];
  // An eager poll: if anything could start a job early, this would.
  const worker = q.work("not-early", recordingHandler(starts), { pollIntervalMs: 20, concurrency: 3 });
  await worker.ready;
  const runAt = new Date((await dbNow()).getTime() + 800);
  await q.enqueue("not-early", { how: "runAt" }, { runAt });
  await q.enqueue("not-early", { how: "delayMs" }, { delayMs: 600 });
  await q.enqueue("not-early", { how: "now" });
  await waitFor(() => starts.length === 3, { what: "three jobs" });
  await worker.stop();
  for (const s of starts) assert.ok(s.startedAt >= s.runAt, `started at ${s.startedAt.toISOString()}, due ${s.runAt.toISOString()}`);
});

test("a worker that started before a delayed job was due runs it promptly, without a new enqueue or a poll", async () => {
  const starts: Start[] = [];
  const runAt = new Date((await dbNow()).getTime() + 1000);
  await q.enqueue("prompt-before", {}, { runAt });
  // Nothing will notify this worker again, and its poll is a minute away.
  const worker = q.work("prompt-before", recordingHandler(starts), { pollIntervalMs: 60_000 });
  await waitFor(() => starts.length === 1, { timeoutMs: 5_000, what: "the delayed job" });
  await worker.stop();
  const lateMs = starts[0]!.startedAt.getTime() - runAt.getTime();
  assert.ok(lateMs >= 0 && lateMs < 500, `started ${lateMs} ms after it was due`);
});

test("a delayed job enqueued while the worker idles runs promptly once due", async () => {
  const starts: Start[] = [];
  const worker = q.work("prompt-idle", recordingHandler(starts), { pollIntervalMs: 60_000 });
  await worker.ready;
  const { id } = await q.enqueue("prompt-idle", {}, { delayMs: 1000 });
  const [row] = await db`select run_at from pgq.jobs where id = ${id}`;
  await waitFor(() => starts.length === 1, { timeoutMs: 5_000, what: "the delayed job" });
  await worker.stop();
  const lateMs = starts[0]!.startedAt.getTime() - (row!.run_at as Date).getTime();
  assert.ok(lateMs >= 0 && lateMs < 500, `started ${lateMs} ms after it was due`);
});

test("a short claim asked for it says when the next delayed job is due; a full one, or one not asked, does not look", async () => {
  const queue = "next-due";
  await q.enqueue(queue, {}, { delayMs: 60_000 });
  await q.enqueue(queue, {});
  await q.enqueue(queue, {});
  const claim = (limit: number, nextDue: boolean) => claimJobs(db, tables(db, "pgq"), { queues: [queue], limit, worker: "w", leaseMs: 60_000, nextDue });
  const full = await claim(1, true);
  const notAsked = await claim(5, false);
  assert.deepEqual([full.jobs.length, full.nextDueInMs, notAsked.jobs.length, notAsked.nextDueInMs], [1, null, 1, null]);
  const short = await claim(5, true);
  assert.equal(short.jobs.length, 0);
  assert.ok(short.nextDueInMs! > 50_000 && short.nextDueInMs! <= 60_000, `due in ${short.nextDueInMs} ms`);
});

test("delay options are checked before any SQL", async () => {
  const bad = [
    { runAt: new Date(), delayMs: 5 },
    { runAt: new Date("not a date") },
    { runAt: "2030-01-01" as unknown as Date },
    { delayMs: -1 },
    { delayMs: 1.5 },
  ];
  for (const options of bad) await assert.rejects(q.enqueue("bad-delay", {}, options), ValidationError, JSON.stringify(options));
  const [row] = await db`select count(*)::int as n from pgq.jobs where queue = 'bad-delay'`;
  assert.equal(row!.n, 0);
});
