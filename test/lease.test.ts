import assert from "node:assert/strict";
import { test } from "node:test";
import { JobTimeoutError, LeaseLostError, WorkerStoppedError } from "../src/errors.js";
import type { Job } from "../src/index.js";
import { testQueue } from "./helpers/queue.js";
import { nextEvent, waitFor } from "./helpers/wait.js";

const { q, db } = await testQueue();

test("lease mode: a 10 s job on a 1 s lease is never claimed again while its worker lives", async () => {
  const { id } = await q.enqueue("long", {});
  let runs = 0;
  const holder = q.work("long", async () => {
    runs++;
    await new Promise((r) => setTimeout(r, 10_000));
  }, { mode: "lease", leaseMs: 1000 });
  await waitFor(() => runs === 1, { what: "the long job to start" });
  // A rival that polls hard and rescues lapsed leases every second.
  const rival = q.work("long", () => void runs++, { mode: "lease", leaseMs: 1000, pollIntervalMs: 50 });
  const [completed] = await nextEvent<[Job]>(holder, "completed", 20_000);
  await Promise.all([holder.stop(), rival.stop()]);
  assert.equal(completed.id, id);
  assert.equal(runs, 1);
  const [row] = await db`select count(*)::int as n from pgq.jobs where id = ${id}`;
  assert.equal(row!.n, 0);
});

test("lease lost: once another worker has the job, the first one cannot complete it", async () => {
  const { id } = await q.enqueue("stolen", {});
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  // A long lease, so the first worker does not renew during the test.
  const first = q.work("stolen", () => gate, { mode: "lease", leaseMs: 60_000 });
  await nextEvent(first, "started");
  await db`update pgq.jobs set locked_until = now() - interval '1 second' where id = ${id}`;
  const second = q.work("stolen", () => undefined, { mode: "lease", pollIntervalMs: 50 });
  const [done] = await nextEvent<[Job]>(second, "completed", 10_000);
  assert.equal(done.id, id);
  assert.equal(done.attempts, 2, "the lapsed attempt counted");
  const lost = nextEvent<[Job]>(first, "lease-lost");
  release();
  const [lostJob] = await lost;
  assert.equal(lostJob.id, id);
  await Promise.all([first.stop(), second.stop()]);
});

test("lease lost: the heartbeat notices and aborts the handler's signal", async () => {
  const { id } = await q.enqueue("taken", {});
  let reason: unknown;
  const worker = q.work("taken", (_job, ctx) => new Promise<void>((resolve) => {
    ctx.signal.addEventListener("abort", () => {
      reason = ctx.signal.reason;
      resolve();
    });
  }), { mode: "lease", leaseMs: 300 });
  await nextEvent(worker, "started");
  await db`update pgq.jobs set lease_token = gen_random_uuid() where id = ${id}`;
  await nextEvent(worker, "lease-lost", 5_000);
  await worker.stop();
  assert.ok(reason instanceof LeaseLostError);
});

for (const mode of ["transaction", "lease"] as const) {
  test(`${mode} mode: a hung handler times out, its signal aborts, and the attempt fails`, async () => {
    const queue = `hung-${mode}`;
    const { id } = await q.enqueue(queue, {}, { backoff: { baseMs: 60_000, maxMs: 60_000 } });
    let aborted: unknown;
    const worker = q.work(queue, (_job, ctx) => {
      ctx.signal.addEventListener("abort", () => (aborted = ctx.signal.reason));
      return new Promise(() => undefined);
    }, { mode, timeoutMs: 200 });
    const [, error, outcome] = await nextEvent<[Job, unknown, string]>(worker, "failed");
    await worker.stop();
    assert.ok(error instanceof JobTimeoutError);
    assert.ok(aborted instanceof JobTimeoutError);
    assert.equal(outcome, "retrying");
    const [row] = await db`select attempts, last_error, locked_until from pgq.jobs where id = ${id}`;
    assert.equal(row!.attempts, 1);
    assert.equal(row!.locked_until, null);
    assert.match(row!.last_error, /JOB_TIMEOUT/);
  });
}

test("transaction mode: a timeout cancels the handler's running query and rolls its writes back", async () => {
  await db`create table slow_effects (n int)`;
  const { id } = await q.enqueue("slow-query", {}, { timeoutMs: 300, maxAttempts: 1 });
  const worker = q.work("slow-query", async (_job, ctx) => {
    await ctx.sql`insert into slow_effects values (1)`;
    await ctx.sql`select pg_sleep(30)`;
  });
  const [, error, outcome] = await nextEvent<[Job, unknown, string]>(worker, "failed", 10_000);
  assert.ok(error instanceof JobTimeoutError);
  assert.equal(outcome, "dead");
  // The backend is free again: no pg_sleep is left running.
  await waitFor(async () => (await db`select from pg_stat_activity where query like '%pg_sleep(30)%' and state = 'active' and pid <> pg_backend_pid()`).length === 0, {
    timeoutMs: 3_000,
    what: "the slow query to be cancelled",
  });
  await worker.stop();
  assert.equal((await db`select * from slow_effects`).length, 0);
  const [dead] = await db`select last_error from pgq.dead_jobs where id = ${id}`;
  assert.match(dead!.last_error, /timeout of 300 ms/);
});

for (const mode of ["transaction", "lease"] as const) {
  test(`${mode} mode: stop({ graceMs }) releases unfinished jobs without spending an attempt`, async () => {
    const queue = `grace-${mode}`;
    const { id } = await q.enqueue(queue, {});
    let signalReason: unknown;
    let handlerCalled!: () => void;
    const called = new Promise<void>((resolve) => (handlerCalled = resolve));
    const worker = q.work(queue, (_job, ctx) => new Promise<void>((_, reject) => {
      ctx.signal.addEventListener("abort", () => reject((signalReason = ctx.signal.reason)));
      handlerCalled();
    }), { mode });
    // Not the "started" event: in transaction mode the handler is called after BEGIN returns.
    await called;
    await worker.stop({ graceMs: 100 });
    assert.ok(signalReason instanceof WorkerStoppedError);
    const [row] = await db`select attempts, locked_until, lease_token, errors from pgq.jobs where id = ${id}`;
    assert.deepEqual([row!.attempts, row!.locked_until, row!.lease_token, row!.errors], [0, null, null, []]);
  });
}
