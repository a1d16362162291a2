// A held snapshot (a long report, pg_dump, a session left in BEGIN) keeps every claimed job's
// entry in jobs_claim. Claims start at a bound past them (src/worker/claim-bounds.ts); what
// lands behind a bound is still claimed: late-committing producers, higher priorities, a run_at
// in the past, promoted group members. Buffers, not times, show the walk's cost.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import postgres from "postgres";
import type { ProcessingMode } from "../src/index.js";
import { tables } from "../src/db/tables.js";
import { claimJobs, type ClaimBound } from "../src/sql/claim.js";
import { completeJobs } from "../src/sql/complete.js";
import { rescueLapsedLeases } from "../src/sql/rescue.js";
import { ClaimBounds } from "../src/worker/claim-bounds.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();
const tb = tables(db, "pgq");

// A snapshot held for the whole file, as a forgotten BEGIN in psql would.
// One connection, so that the transaction stays open on it between statements; ending it rolls back.
const holder = postgres(url, { max: 1, onnotice: () => {} });
await holder`begin isolation level repeatable read`;
await holder`select count(*) from pgq.jobs`;
after(() => holder.end({ timeout: 1 }));

// auto_explain reports each claim's buffers: one connection, so every claim runs in its session.
const notices: string[] = [];
const explained = postgres(url, { max: 1, onnotice: (n) => notices.push(n.message ?? "") });
after(() => explained.end({ timeout: 1 }));
await explained`load 'auto_explain'`;
await explained`select set_config('auto_explain.log_min_duration', '0', false), set_config('auto_explain.log_level', 'notice', false),
                       set_config('auto_explain.log_format', 'json', false), set_config('auto_explain.log_analyze', 'on', false),
                       set_config('auto_explain.log_timing', 'off', false), set_config('auto_explain.log_buffers', 'on', false)`;

/** Shared buffers the claim touched, from its plan. */
async function claimBuffers(queue: string, bound: ClaimBound | null): Promise<{ buffers: number; claimed: number; next: ClaimBound }> {
  const from = notices.length;
  const { jobs, bounds } = await claimJobs(explained, tables(explained, "pgq"), { queues: [queue], bounds: [bound], limit: 1, worker: "w", leaseMs: 60_000 });
  const plan = notices.slice(from).map((n) => JSON.parse(n.slice(n.indexOf("{"))) as { Plan: Record<string, number> }).at(-1)!;
  return { buffers: plan.Plan["Shared Hit Blocks"]! + plan.Plan["Shared Read Blocks"]!, claimed: jobs.length, next: bounds.get(queue)! };
}

test("while a snapshot is held, a claim from its bound reads a few buffers where one from the head reads a thousand", async (t) => {
  const queue = "churn";
  // 20,000 jobs claimed and completed under the held snapshot: 20,000 dead entries at the head.
  await db`insert into pgq.jobs (queue, payload, run_at) select ${queue}, '{}', now() - interval '1 minute' + i * interval '1 ms' from generate_series(1, 20000) i`;
  let bound: ClaimBound | null = null;
  for (let claimed = -1; claimed !== 0; ) {
    const { jobs, bounds } = await claimJobs(db, tb, { queues: [queue], bounds: [bound], limit: 1000, worker: "w", leaseMs: 60_000 });
    await db`delete from pgq.jobs where id = any(${jobs.map((j) => j.id)}::bigint[])`;
    claimed = jobs.length;
    bound = bounds.get(queue)!;
  }
  await q.enqueueMany(queue, Array.from({ length: 20 }, (_, i) => ({ i })));
  const fromHead = await claimBuffers(queue, null);
  const fromBound = await claimBuffers(queue, bound);
  const next = await claimBuffers(queue, fromBound.next);
  t.diagnostic(`claim of 1 behind 20,000 dead entries: ${fromHead.buffers} buffers from the head, ${fromBound.buffers} from the bound, ${next.buffers} from the next bound`);
  assert.deepEqual([fromHead.claimed, fromBound.claimed, next.claimed], [1, 1, 1]);
  assert.ok(fromBound.buffers * 10 < fromHead.buffers, `${fromBound.buffers} buffers from the bound, ${fromHead.buffers} from the head`);
  assert.ok(next.buffers * 10 < fromHead.buffers, `${next.buffers} buffers from the next bound`);
});

test("after an ANALYZE that saw few live jobs, the claim and a batched completion still reach their rows by key", async (t) => {
  // The 20,000 dead entries of the test above stay; the statistics now say pgq.jobs is nearly
  // empty, which made the planner walk the whole primary key to join a handful of ids.
  const queue = "after-analyze";
  await db`delete from pgq.jobs where queue = 'churn'`;
  await db`analyze pgq.jobs`;
  await q.enqueueMany(queue, Array.from({ length: 5 }, (_, i) => ({ i })));
  const claim = await claimBuffers(queue, null);
  const from = notices.length;
  await q.enqueueMany(queue, Array.from({ length: 5 }, (_, i) => ({ i })));
  const { jobs } = await claimJobs(explained, tables(explained, "pgq"), { queues: [queue], bounds: [claim.next], limit: 5, worker: "w", leaseMs: 60_000 });
  await completeJobs(explained, tables(explained, "pgq"), jobs.map((j) => j.id), jobs.map((j) => j.lease_token), jobs.map(() => null));
  const [claimed, completed] = notices.slice(from).map((n) => JSON.parse(n.slice(n.indexOf("{"))) as { Plan: Record<string, number> })
    .map(({ Plan }) => Plan["Shared Hit Blocks"]! + Plan["Shared Read Blocks"]!);
  t.diagnostic(`claim of 5: ${claimed} buffers; their completion: ${completed}`);
  assert.equal(jobs.length, 5);
  assert.ok(claimed! < 1_000, `the claim read ${claimed} buffers`);
  assert.ok(completed! < 1_000, `the completion read ${completed} buffers`);
});

test("while a snapshot is held, the walk for lapsed leases starts where the last one ended; one from the head finds a lease behind it", async (t) => {
  // 1,000 jobs leased and finished under the held snapshot: 1,000 dead entries of lease ends a minute ago in jobs_leased.
  await db`insert into pgq.jobs (queue, payload) select 'leases', '{}' from generate_series(1, 1000)`;
  const { jobs } = await claimJobs(db, tb, { queues: ["leases"], limit: 1000, worker: "w", leaseMs: -60_000 });
  await db`delete from pgq.jobs where queue = 'leases'`;
  assert.equal(jobs.length, 1000);
  const rescueBuffers = async (from: Date | null) => {
    const seen = notices.length;
    const rescue = await rescueLapsedLeases(explained, tables(explained, "pgq"), from);
    const plans = notices.slice(seen).map((n) => JSON.parse(n.slice(n.indexOf("{"))) as { "Query Text": string; Plan: Record<string, number> });
    const walk = plans.find((p) => p["Query Text"].includes("locked_until < now()"))!;
    return { ...rescue, buffers: walk.Plan["Shared Hit Blocks"]! + walk.Plan["Shared Read Blocks"]! };
  };
  const fromHead = await rescueBuffers(null);
  const resumed = await rescueBuffers(fromHead.next);
  t.diagnostic(`walk for lapsed leases behind 1,000 dead entries: ${fromHead.buffers} buffers from the head, ${resumed.buffers} from where it ended`);
  assert.ok(resumed.buffers * 10 < fromHead.buffers, `${resumed.buffers} buffers resumed, ${fromHead.buffers} from the head`);

  const [{ id }] = await db<[{ id: string }]>`
    insert into pgq.jobs (queue, payload, attempts, locked_by, lease_token, locked_until)
    values ('leases', '{}', 1, 'gone', gen_random_uuid(), ${resumed.next!}::timestamptz - interval '1 minute') returning id::text`;
  assert.deepEqual((await rescueBuffers(resumed.next)).outcomes, [], "a lease behind where the walk resumes is not seen there");
  assert.deepEqual((await rescueBuffers(null)).outcomes.map((o) => o.id), [id], "the walk from the head finds it");
});

test("a delayed job first in its queue does not put the bound past the jobs enqueued after it", async () => {
  const queue = "bound-delayed";
  await q.enqueue(queue, { later: true }, { delayMs: 3_600_000 });
  const first = await claimJobs(db, tb, { queues: [queue], bounds: [null], limit: 1, worker: "w", leaseMs: 60_000 });
  const { id } = await q.enqueue(queue, { now: true });
  const next = await claimJobs(db, tb, { queues: [queue], bounds: [first.bounds.get(queue)!], limit: 1, worker: "w", leaseMs: 60_000 });
  assert.deepEqual(next.jobs.map((j) => j.id), [id]);
});

for (const mode of ["transaction", "lease"] as ProcessingMode[]) {
  test(`${mode} mode: what lands behind a worker's bound still runs: a late commit, a higher priority, now or later, a past run_at, a promoted group member`, async () => {
    const queue = `behind-${mode}`;
    const done: string[] = [];
    const worker = q.work(queue, async (job) => {
      done.push((job.payload as { name: string }).name);
    }, { mode, concurrency: 2 });
    await worker.ready;
    const flow = async (n: number, name: string) => {
      for (let i = 0; i < n; i++) await q.enqueue(queue, { name: `${name}-${i}` });
    };
    await flow(50, "before");
    // Its run_at is this transaction's start; it commits after 3 s of other jobs.
    const late = db.begin(async (tx) => {
      await q.enqueue(queue, { name: "late" }, { tx });
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    });
    const stream = (async () => {
      for (let i = 0; i < 30; i++) {
        await flow(2, `during-${i}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await late;
    await stream;
    // Each in turn, so that none is found thanks to another's notification.
    const ran = (name: string) => waitFor(async () => done.includes(name), { timeoutMs: 20_000, what: `job ${name} to run` });
    await ran("late");
    await q.enqueue(queue, { name: "urgent" }, { priority: -5 });
    await ran("urgent");
    await flow(5, "between");
    // Due in a second, at a higher priority than the bound's: it will land behind it.
    await q.enqueue(queue, { name: "urgent-later" }, { priority: -5, runAt: new Date(Date.now() + 1_000) });
    await flow(5, "meanwhile");
    await ran("urgent-later");
    await q.enqueue(queue, { name: "backfill" }, { runAt: new Date(Date.now() - 3_600_000) });
    await ran("backfill");
    await q.enqueue(queue, { name: "group-1" }, { groupKey: "g" });
    await q.enqueue(queue, { name: "group-2" }, { groupKey: "g" });
    await flow(10, "after");
    await waitFor(async () => (await db`select from pgq.jobs where queue = ${queue}`).length === 0, { timeoutMs: 30_000, what: `queue ${queue} to drain` });
    await worker.stop();
    for (const name of ["late", "urgent", "urgent-later", "backfill", "group-1", "group-2", "before-0", "after-9"]) assert.ok(done.includes(name), `${name} ran`);
    assert.equal(done.length, 50 + 60 + 1 + 1 + 5 + 1 + 5 + 1 + 2 + 10);
    assert.ok(done.indexOf("group-1") < done.indexOf("group-2"), "the group's order holds");
  });
}

test("the audit looks behind the bounds of queues that heard a notification since it last looked, or behind all while not every one is heard", () => {
  const bounds = new ClaimBounds(["a", "b", "c"]);
  bounds.forClaim();
  const at = { priority: 0, runAt: new Date() };
  bounds.claimed(new Map([["a", at], ["b", at], ["c", at]]));
  const audited = (hearsAll: boolean) => bounds.forAudit(hearsAll).map(([queue]) => queue);
  assert.deepEqual(audited(true), [], "idle: nothing heard, nothing to read");
  bounds.heard("a", { kind: "priority", priority: 0 });
  bounds.heard("b", { kind: "priority", priority: -1 }); // ahead of b's bound: dropped, claimed from the head
  bounds.forClaim();
  bounds.heard("c", undefined); // heard during a claim, without saying where
  bounds.claimed(new Map([["c", at]]));
  assert.deepEqual(audited(true), ["a", "c"]);
  assert.deepEqual(audited(true), [], "each heard notification is looked behind once");
  assert.deepEqual(audited(false), ["a", "c"], "without LISTEN, every bound at every audit");
});

test("a notification that says where its jobs landed moves the bound back to exactly there, and leaves the audit nothing to read", () => {
  const bounds = new ClaimBounds(["a"]);
  const at = { priority: 0, runAt: new Date(1_000_000) };
  bounds.forClaim();
  bounds.claimed(new Map([["a", at]]));
  bounds.heard("a", { kind: "priority", priority: 0, runAtMs: 2_000_000 });
  assert.deepEqual(bounds.forClaim(), [at], "ahead of the bound: it stays");
  bounds.heard("a", { kind: "priority", priority: 0, runAtMs: 400_000 }); // a late commit, heard during the claim
  bounds.claimed(new Map([["a", at]]));
  assert.deepEqual(bounds.forClaim(), [{ priority: 0, runAt: new Date(400_000) }], "behind it: the bound moves back, after the claim's own");
  bounds.heard("a", { kind: "priority", priority: -3, runAtMs: 2_000_000 });
  assert.deepEqual(bounds.forClaim(), [{ priority: -3, runAt: new Date(2_000_000) }], "a higher priority comes first, whatever its time");
  for (let i = 1; i < 12; i++) assert.deepEqual(bounds.forAudit(true), [], "nothing heard without a run_at: nothing to read");
  assert.deepEqual(bounds.forAudit(true).map(([queue]) => queue), ["a"], "once a minute, every bound all the same");
});

test("a ready notification says the oldest run_at of its jobs, once per queue and priority", async () => {
  const payloads: string[] = [];
  const listener = await db.listen("pgq_jobs", (payload) => payloads.push(payload));
  try {
    const [{ first }] = await db<{ first: Date }[]>`
      with ins as (
        insert into pgq.jobs (queue, payload, priority, run_at)
        values ('landing', '{}', 0, now() - interval '1 second'), ('landing', '{}', 0, now()), ('landing', '{}', 2, now())
        returning run_at)
      select min(run_at) as first from ins`;
    await waitFor(async () => payloads.filter((p) => p.startsWith("landing\n")).length >= 2, { what: "the notifications" });
    assert.deepEqual(payloads.filter((p) => p.startsWith("landing\n")).sort(),
                     [`landing\np0@${Math.floor(first.getTime())}`, `landing\np2@${Math.floor(first.getTime()) + 1000}`]);
  } finally {
    await listener.unlisten();
  }
});

test("a promoted group member is announced where it lands, even when its head's transaction began before it was enqueued", async () => {
  const payloads: string[] = [];
  const listener = await db.listen("pgq_jobs", (payload) => payloads.push(payload));
  try {
    const promote = async (group: string, options: { priority?: number; runAt?: Date }) => {
      const head = await q.enqueue("promote", {}, { groupKey: group });
      let at = "";
      let from = 0;
      // As in transaction mode: the head finishes in a transaction that began before its successor existed.
      await db.begin(async (tx) => {
        await tx`select now()`;
        await new Promise((resolve) => setTimeout(resolve, 20));
        const member = await q.enqueue("promote", {}, { groupKey: group, ...options });
        const [{ runAt }] = await db<{ runAt: Date }[]>`select run_at as "runAt" from pgq.jobs where id = ${member.id}`;
        at = `@${Math.floor(runAt.getTime())}`;
        // The member's enqueue announced it too, while it still waited for its head.
        await waitFor(async () => payloads.some((p) => p.endsWith(at)), { what: `the enqueue in group ${group}` });
        from = payloads.length;
        await tx`delete from pgq.jobs where id = ${head.id}`;
      });
      await waitFor(async () => payloads.slice(from).some((p) => p.endsWith(at)), { what: `the promotion in group ${group}` });
      return { parts: payloads.slice(from).find((p) => p.endsWith(at))!.split("\n"), at };
    };
    const now = await promote("now", { priority: 2 });
    assert.deepEqual(now.parts, ["promote", `p2${now.at}`]);
    const later = await promote("later", { runAt: new Date(Date.now() + 60_000) });
    assert.equal(later.parts.length, 3, later.parts.join(" | "));
    assert.ok(Number(later.parts[1]) > 50_000 && Number(later.parts[1]) <= 60_000, `due in ${later.parts[1]} ms`);
    assert.equal(later.parts[2], `p0${later.at}`);
  } finally {
    await listener.unlisten();
  }
});

test("a retry says where it lands and when it is due, to every process's workers", async () => {
  const payloads: string[] = [];
  const listener = await db.listen("pgq_jobs", (payload) => payloads.push(payload));
  const worker = q.work("retry-landing", async () => {
    throw new Error("not yet");
  }, { mode: "lease" });
  try {
    const { id } = await q.enqueue("retry-landing", {}, { priority: 3, backoff: { baseMs: 60_000 } });
    const [{ runAt }] = await waitFor(async () => {
      const rows = await db<{ runAt: Date }[]>`select run_at as "runAt" from pgq.jobs where id = ${id} and attempts = 1 and locked_by is null`;
      return rows.length > 0 ? rows : undefined;
    }, { what: "the retry" });
    const mine = () => payloads.filter((p) => p.startsWith("retry-landing\n"));
    await waitFor(async () => mine().length >= 2, { what: "the retry's notification" });
    const retry = mine().at(-1)!.split("\n");
    assert.equal(retry.length, 3, mine().at(-1));
    assert.equal(retry[0], "retry-landing");
    assert.ok(Number(retry[1]) > 20_000 && Number(retry[1]) <= 120_000, `due in ${retry[1]} ms`);
    assert.equal(retry[2], `p3@${Math.floor(runAt.getTime())}`);
  } finally {
    await worker.stop();
    await listener.unlisten();
  }
});

test("FIFO within a priority holds with bounds: one slot runs jobs in the order they were enqueued", async () => {
  const queue = "fifo";
  const ids = await q.enqueueMany(queue, Array.from({ length: 200 }, (_, i) => ({ i })));
  const order: string[] = [];
  const worker = q.work(queue, async (job) => {
    order.push(job.id);
    if (order.length % 20 === 0) await q.enqueueMany(queue, [{ more: order.length }]);
  }, { mode: "lease", concurrency: 1 });
  await waitFor(async () => (await db`select from pgq.jobs where queue = ${queue}`).length === 0, { timeoutMs: 30_000, what: "the queue to drain" });
  await worker.stop();
  assert.deepEqual(order.slice(0, 200), ids);
});
