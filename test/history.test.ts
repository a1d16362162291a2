import assert from "node:assert/strict";
import { test } from "node:test";
import { connect, JobCancelledError, JobFailedError, type ProcessingMode } from "../src/index.js";
import { maintainHistory } from "../src/sql/history.js";
import { expireJobs } from "../src/sql/expire.js";
import { tables } from "../src/db/tables.js";
import { claimJobs } from "../src/sql/claim.js";
import type { Sql } from "postgres";
import { drained, testQueue } from "./helpers/queue.js";
import { nextEvent, waitFor } from "./helpers/wait.js";
import { forkWorker } from "./helpers/workers.js";

const { q, db, url } = await testQueue();
const tb = tables(db, "pgq");

for (const mode of ["transaction", "lease"] as ProcessingMode[]) {
  test(`${mode} mode: completed and dead jobs are in history with result, errors, times and worker; getJob finds them`, async () => {
    const queue = `hist-${mode}`;
    const { id: ok } = await q.enqueue(queue, { n: 21 });
    const { id: bad } = await q.enqueue(queue, { n: -1 }, { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1 } });
    const worker = q.work(queue, async (job, ctx) => {
      const { n } = job.payload as { n: number };
      await ctx.progress({ step: 1 });
      if (n < 0) throw new Error("negative");
      return { doubled: n * 2 };
    }, { mode, name: `w-${mode}` });
    await drained(db, queue);
    await worker.stop();
    const done = await q.getJob(ok);
    assert.equal(done?.state, "completed");
    assert.deepEqual(done?.result, { doubled: 42 });
    assert.deepEqual(done?.progress, { step: 1 });
    assert.equal(done?.worker, `w-${mode}`);
    assert.ok(done!.startedAt! <= done!.finishedAt!);
    const dead = await q.getJob(bad);
    assert.equal(dead?.state, "dead");
    assert.equal(dead?.attempts, 2);
    assert.equal(dead?.errors.length, 2);
    assert.match(dead!.lastError!, /negative/);
    assert.equal((await q.deadJobs.list({ queue })).length, 1, "dead_jobs keeps its contract");
    assert.deepEqual((await q.history({ queue })).map((j) => j.state).sort(), ["completed", "dead"]);
    assert.deepEqual((await q.history({ queue, state: "dead" })).map((j) => j.id), [bad]);
    const [inspected] = (await q.inspect({ queue })).queues;
    assert.equal(inspected?.completedLastMinute, 1);
    assert.equal(inspected?.failedLastMinute, 1);
    assert.equal(inspected?.completedLastHour, 1);
  });

  test(`${mode} mode: cancel of a waiting job and of a running one (its signal aborts, nothing it wrote commits)`, async (tc) => {
    const queue = `cancel-${mode}`;
    await db`create table if not exists cancel_effects (job bigint)`;
    const { id: waiting } = await q.enqueue(queue, {}, { delayMs: 3_600_000 });
    assert.equal(await q.cancel(waiting), true);
    assert.equal((await q.getJob(waiting))?.state, "cancelled");
    const { id: running } = await q.enqueue(queue, {});
    let aborted = 0;
    let wrote!: () => void;
    const written = new Promise<void>((resolve) => (wrote = resolve));
    const worker = q.work(queue, async (job, ctx) => {
      await ctx.sql`insert into cancel_effects values (${job.id})`;
      const abort = new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      wrote();
      await abort;
      aborted = performance.now();
      return "too late";
    }, { mode, leaseMs: 30_000 });
    await written;
    const cancelledEvent = nextEvent(worker, "cancelled");
    const asked = performance.now();
    assert.equal(await q.cancel(running), true);
    await cancelledEvent;
    tc.diagnostic(`${mode}: signal aborted ${Math.round(aborted - asked)} ms after q.cancel()`);
    await worker.stop();
    const info = await q.getJob(running);
    assert.equal(info?.state, "cancelled");
    assert.equal(info?.result, null);
    const effects = await db`select from cancel_effects where job = ${running}`;
    if (mode === "transaction") assert.equal(effects.length, 0, "the cancelled job's own transaction rolled back");
    assert.equal(await q.cancel(running), false, "a finished job cannot be cancelled again");
    await assert.rejects(q.waitFor(running), JobCancelledError);
  });
}

test("expiry: a job past expiresAt or its queue's ttl never runs; it is finished as expired, or dead with reason expired without history", async () => {
  const ran: string[] = [];
  const { id: expiring } = await q.enqueue("expiry", { a: 1 }, { expiresAt: new Date(Date.now() - 1000) });
  const { id: fresh } = await q.enqueue("expiry", { a: 2 }, { ttlMs: 3_600_000 });
  await q.setQueue("expiry-ttl", { ttlMs: 1 });
  const { id: stale } = await q.enqueue("expiry-ttl", {}, { delayMs: 0 });
  await db`update pgq.jobs set run_at = now() - interval '1 minute' where id = ${stale}`;
  await q.setQueue("expiry-nohist", { retentionMs: 0 });
  const { id: nohist } = await q.enqueue("expiry-nohist", {}, { ttlMs: 1 });
  await db`update pgq.jobs set expires_at = now() - interval '1 second' where id = ${nohist}`;
  // A claim before maintenance ran steps over them.
  const worker = q.work(["expiry", "expiry-ttl", "expiry-nohist"], (job) => void ran.push(job.id));
  await waitFor(() => ran.includes(fresh), { what: "the fresh job" });
  await worker.stop();
  assert.deepEqual(ran, [fresh]);
  await expireJobs(db, tb);
  assert.equal((await q.getJob(expiring))?.state, "expired");
  assert.equal((await q.getJob(stale))?.state, "expired");
  const [dead] = await db`select reason from pgq.dead_jobs where id = ${nohist}`;
  assert.equal(dead?.reason, "expired");
  assert.equal((await q.getJob(nohist))?.state, "expired");
  await assert.rejects(q.waitFor(expiring), (e: unknown) => e instanceof JobFailedError && e.state === "expired");
});

test("expiry: a claim that finds an expired job first in its queue says so, and its worker finishes it at once", async () => {
  const { id } = await q.enqueue("expiry-claim", {}, { expiresAt: new Date(Date.now() - 1000) });
  const claim = await claimJobs(db, tb, { queues: ["expiry-claim"], limit: 8, worker: "w", leaseMs: 1000 });
  assert.deepEqual([claim.jobs.length, claim.expiredAhead], [0, true]);
  const worker = q.work("expiry-claim", () => assert.fail("an expired job ran"));
  await waitFor(async () => (await q.getJob(id))?.state === "expired", { what: "the worker's claim to finish the expired job" });
  await worker.stop();
});

test("retention: maintenance drops a whole past partition while a worker drains, and makes the days ahead", async (tc) => {
  const yesterday = new Date(Date.now() - 86_400_000);
  const day = new Date(Date.UTC(yesterday.getUTCFullYear(), yesterday.getUTCMonth(), yesterday.getUTCDate()));
  const name = `history_${day.toISOString().slice(0, 10).replaceAll("-", "")}`;
  await db.unsafe(`create table pgq.${name} partition of pgq.history for values from ('${day.toISOString()}') to ('${new Date(day.getTime() + 86_400_000).toISOString()}')`);
  await db`insert into pgq.history (id, queue, state, payload, priority, attempts, max_attempts, errors, created_at, finished_at, purge_at)
           values (999999, 'old', 'completed', '{}', 0, 1, 1, '[]', now() - interval '8 days', now() - interval '8 days', ${day})`;
  await q.enqueueMany("retention", Array.from({ length: 500 }, (_, i) => ({ i })));
  const worker = q.work("retention", (job) => job.payload, { mode: "lease", concurrency: 4 });
  // The worker's own maintenance may get there first: either way, the partition goes whole.
  await maintainHistory(db, tb);
  await drained(db, "retention");
  await worker.stop();
  const [gone] = await db`select to_regclass(${`pgq.${name}`}) is null as gone`;
  assert.equal(gone?.gone, true);
  const [ahead] = await db`select count(*)::int as n from pg_inherits where inhparent = 'pgq.history'::regclass`;
  assert.ok(ahead!.n > 1, "days ahead have partitions, besides the default");
  assert.equal(await q.getJob("999999"), null);
  const [kept] = await db`select count(*)::int as n from pgq.history where queue = 'retention'`;
  assert.equal(kept?.n, 500);
  const [inDefault] = await db`select count(*)::int as n from pgq.history_default`;
  tc.diagnostic(`rows in the default partition: ${inDefault?.n}`);
});

test("waitFor: 1,000 concurrent waiters each get their own result; round trips on an idle worker", async (tc) => {
  const worker = q.work("rpc", (job) => ({ echo: (job.payload as { i: number }).i }), { mode: "lease", concurrency: 20 });
  await worker.ready;
  const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => q.enqueueAndWait("rpc", { i }, { timeoutMs: 60_000 })));
  assert.deepEqual(results, Array.from({ length: 1000 }, (_, i) => ({ echo: i })));
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const started = performance.now();
    await q.enqueueAndWait("rpc", { i });
    times.push(performance.now() - started);
  }
  await worker.stop();
  times.sort((a, b) => a - b);
  tc.diagnostic(`enqueueAndWait round trip on an idle worker: p50 ${times[100]!.toFixed(1)} ms, p99 ${times[198]!.toFixed(1)} ms`);
});

test("finished jobs are announced on <schema>_finished only while some client waits, and a client that closes stops counting", async () => {
  const heard: string[] = [];
  const { unlisten } = await db.listen("pgq_finished", (payload) => heard.push(...payload.split(",")));
  // Notifications arrive in commit order: once this one is heard, any before it would have been.
  const heardUpTo = async (mark: string) => {
    await db`select pg_notify('pgq_finished', ${mark})`;
    await waitFor(() => heard.includes(mark), { what: `the notification ${mark}` });
  };
  await db`delete from pgq.waiting_clients`;
  const queue = "announced";
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const worker = q.work(queue, async (job) => {
    if ((job.payload as { gated?: boolean }).gated) await gate;
    return { id: job.id };
  }, { mode: "lease" });
  const { id: unheard } = await q.enqueue(queue, {});
  await drained(db, queue);
  await heardUpTo("mark-1");
  assert.ok(!heard.includes(unheard), "nobody waited: no announcement");

  const waiter = await connect({ databaseUrl: url });
  const { id: awaited } = await waiter.enqueue(queue, { gated: true });
  const result = waiter.waitFor(awaited, { timeoutMs: 60_000 });
  await waitFor(async () => (await db`select from pgq.waiting_clients`).length === 1, { what: "the waiting client's row" });
  open();
  assert.deepEqual(await result, { id: awaited });
  await heardUpTo("mark-2");
  assert.ok(heard.includes(awaited), "a client waited: announced");

  await waiter.close();
  assert.equal((await db`select from pgq.waiting_clients`).length, 0, "a closed client no longer counts");
  const { id: after } = await q.enqueue(queue, {});
  await drained(db, queue);
  await heardUpTo("mark-3");
  assert.ok(!heard.includes(after));
  await worker.stop();
  await unlisten();
});

for (const mode of ["transaction", "lease"]) {
  test(`${mode} mode: a waiter survives its job's worker being killed, and gets the retry's result`, async () => {
    const queue = `crash-wait-${mode}`;
    const { id } = await q.enqueue(queue, { kill: true }, { maxAttempts: 3, backoff: { baseMs: 1, maxMs: 1 } });
    const result = q.waitFor(id, { timeoutMs: 60_000 });
    const crashed = await forkWorker("test/fixtures/worker.ts", [queue, mode, "300"], url).exited;
    assert.equal(crashed.signal, "SIGKILL");
    const worker = q.work(queue, (job) => ({ attempt: job.attempts }), { mode: mode as ProcessingMode, pollIntervalMs: 100 });
    assert.deepEqual(await result, { attempt: 2 });
    await worker.stop();
  });
}

test("the claim never reads the history: its cost stays flat as the history grows", async (tc) => {
  await q.enqueueMany("flat", Array.from({ length: 2000 }, () => ({})));
  // Each claim runs in a transaction that rolls back, so every one sees the same 2,000 jobs.
  const medianClaimMs = async () => {
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      await db.begin(async (tx) => {
        const started = performance.now();
        await claimJobs(tx as unknown as Sql, tb, { queues: ["flat"], limit: 8, worker: "w", leaseMs: 1000 });
        times.push(performance.now() - started);
        await tx`rollback`;
      }).catch(() => undefined);
    }
    return times.sort((a, b) => a - b)[25]!;
  };
  const before = await medianClaimMs();
  await db`insert into pgq.history (id, queue, state, payload, priority, attempts, max_attempts, errors, created_at, finished_at, purge_at)
           select g, 'flat', 'completed', '{}', 0, 1, 1, '[]', now(), now(), now() + interval '7 days'
           from generate_series(10000000, 10300000) g`;
  const after = await medianClaimMs();
  tc.diagnostic(`claim of 8 from 2,000 ready jobs, median: ${before.toFixed(2)} ms with no history, ${after.toFixed(2)} ms with 300,001 history rows`);
  assert.doesNotMatch(claimJobs.toString(), /history/, "the claim statement does not name the history");
});
