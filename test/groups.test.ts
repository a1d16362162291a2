import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { test } from "node:test";
import postgres from "postgres";
import { claimJobs } from "../src/sql/claim.js";
import { tables } from "../src/db/tables.js";
import type { Job } from "../src/index.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();

type Item = { group: string | null; n: number };

/** Records, per group, the order jobs started in and whether two ever ran at once. */
function recorder() {
  const started = new Map<string, number[]>();
  const active = new Map<string, number>();
  const overlaps: string[] = [];
  let activeGroups = 0;
  let maxActiveGroups = 0;
  return {
    started,
    overlaps,
    get maxActiveGroups() {
      return maxActiveGroups;
    },
    enter(group: string, n: number) {
      const now = (active.get(group) ?? 0) + 1;
      active.set(group, now);
      if (now > 1) overlaps.push(`${group}#${n}`);
      if (now === 1) maxActiveGroups = Math.max(maxActiveGroups, ++activeGroups);
      started.set(group, [...(started.get(group) ?? []), n]);
    },
    leave(group: string) {
      const now = active.get(group)! - 1;
      active.set(group, now);
      if (now === 0) activeGroups--;
    },
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("8 concurrent workers on 3 groups: one job at a time per group, in enqueue order, groups in parallel", async () => {
  const groups = ["red", "green", "blue"];
  const expected = new Map(groups.map((g) => [g, [] as number[]]));
  // Interleaved single enqueues, plus ungrouped jobs that may run anywhere.
  for (let n = 0; n < 20; n++) {
    for (const g of groups) {
      await q.enqueue("groups", { group: g, n }, { groupKey: g });
      expected.get(g)!.push(n);
    }
    await q.enqueue("groups", { group: null, n });
  }
  const rec = recorder();
  let done = 0;
  const handler = async (job: Job<Item>) => {
    const { group, n } = job.payload;
    if (group) rec.enter(group, n);
    await pause(2); // some work, so that jobs overlap across workers
    if (group) rec.leave(group);
    done++;
  };
  const workers = Array.from({ length: 8 }, () => q.work("groups", handler));
  await waitFor(() => done === 80, { timeoutMs: 30_000, what: "80 jobs" });
  await Promise.all(workers.map((w) => w.stop()));
  assert.deepEqual(rec.overlaps, [], "two jobs of one group ran at once");
  for (const g of groups) assert.deepEqual(rec.started.get(g), expected.get(g), `group ${g} ran out of order`);
  assert.ok(rec.maxActiveGroups >= 2, "different groups should run in parallel");
});

test("a retrying job holds its group's order until it succeeds; other groups keep flowing", async () => {
  const events: string[] = [];
  await q.enqueue("retry-holds", { group: "a", n: 1 }, { groupKey: "a", backoff: { baseMs: 500, maxMs: 500 } });
  await q.enqueue("retry-holds", { group: "a", n: 2 }, { groupKey: "a" });
  await q.enqueueMany("retry-holds", [1, 2, 3, 4, 5].map((n) => ({ group: "b", n })), { groupKey: "b" });
  await q.enqueueMany("retry-holds", [1, 2, 3].map((n) => ({ group: null, n })));
  let done = 0;
  const worker = q.work("retry-holds", (job: Job<Item>) => {
    const { group, n } = job.payload;
    events.push(`${group ?? "-"}${n}@${job.attempts}`);
    if (group === "a" && n === 1 && job.attempts === 1) throw new Error("first attempt fails");
    done++;
  }, { concurrency: 4 });
  await waitFor(() => done === 10, { timeoutMs: 15_000, what: "10 jobs" });
  await worker.stop();
  const a = events.filter((e) => e.startsWith("a"));
  assert.deepEqual(a, ["a1@1", "a1@2", "a2@1"]);
  // Everything else ran while a1 waited for its retry.
  const retryAt = events.indexOf("a1@2");
  for (const e of events.filter((e) => !e.startsWith("a"))) assert.ok(events.indexOf(e) < retryAt, `${e} waited behind group a`);
  assert.deepEqual(events.filter((e) => e.startsWith("b")), ["b1@1", "b2@1", "b3@1", "b4@1", "b5@1"]);
});

test("a job that dies releases its group to the next job", async () => {
  const ran: string[] = [];
  await q.enqueue("dies", { n: 1 }, { groupKey: "g", maxAttempts: 1 });
  await q.enqueue("dies", { n: 2 }, { groupKey: "g" });
  const worker = q.work("dies", (job: Job<{ n: number }>) => {
    ran.push(`${job.payload.n}`);
    if (job.payload.n === 1) throw new Error("dies on its only attempt");
  });
  await waitFor(() => ran.length === 2, { what: "both jobs" });
  await worker.stop();
  assert.deepEqual(ran, ["1", "2"]);
  const [dead] = await db`select count(*)::int as n from pgq.dead_jobs where queue = 'dies'`;
  assert.equal(dead!.n, 1);
});

test("a slow group does not hold up the others", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const ran: string[] = [];
  await q.enqueueMany("slow", [1, 2].map((n) => ({ group: "slow", n })), { groupKey: "slow" });
  for (const g of ["x", "y"]) await q.enqueueMany("slow", [1, 2, 3, 4].map((n) => ({ group: g, n })), { groupKey: g });
  const worker = q.work("slow", async (job: Job<Item>) => {
    ran.push(`${job.payload.group}${job.payload.n}`);
    if (job.payload.group === "slow" && job.payload.n === 1) await released;
  }, { concurrency: 3 });
  await waitFor(() => ran.length === 9, { what: "groups x and y to finish while slow1 runs" });
  assert.ok(!ran.includes("slow2"), "slow2 must wait for slow1");
  release();
  await waitFor(() => ran.length === 10, { what: "slow2" });
  await worker.stop();
  assert.equal(ran.at(-1), "slow2");
});

test("concurrent enqueues into one group are serialised: one head, the later one waits", async () => {
  const a = postgres(url, { max: 1, onnotice: () => {} });
  const b = postgres(url, { max: 1, onnotice: () => {} });
  try {
    let commitA!: () => void;
    const aInserted = new Promise<void>((resolve) => {
      void a.begin(async (tx) => {
        await q.enqueue("race", { by: "a" }, { groupKey: "g", tx });
        resolve();
        await new Promise<void>((r) => (commitA = r));
      });
    });
    await aInserted;
    // b's enqueue waits for a's group lock; it commits right after a.
    const bDone = b.begin((tx) => q.enqueue("race", { by: "b" }, { groupKey: "g", tx }));
    await waitFor(async () => (await db`select from pg_locks where locktype = 'advisory' and not granted`).length > 0, { what: "b to wait" });
    commitA();
    await bDone;
    const rows = await db`select payload->>'by' as by, group_waiting from pgq.jobs where queue = 'race' order by id`;
    assert.deepEqual(rows.map((r) => [r.by, r.group_waiting]), [["a", false], ["b", true]]);
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
});

test("claim time does not grow with blocked group members: 5,000 keys x 10 jobs", async (t) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const pgq = tables(sql, "pgq");
  try {
    // Key-major, as bursts per key arrive: each group's members sit together in claim order.
    await db`insert into pgq.jobs (queue, payload, group_key)
             select 'many-groups', to_jsonb(i), 'key-' || (i / 10) from generate_series(0, 49999) as i`;
    await db`vacuum analyze pgq.jobs`;
    const medianClaimMs = async () => {
      const ms: number[] = [];
      for (let i = 0; i < 15; i++) {
        const started = performance.now();
        const { jobs } = await claimJobs(sql, pgq, { queues: ["many-groups"], limit: 8, worker: "bench", leaseMs: 60_000 });
        ms.push(performance.now() - started);
        assert.equal(jobs.length, 8);
        // Hand them back, so every claim sees the same table.
        await db`update pgq.jobs set locked_until = null, lease_token = null, locked_by = null, attempts = 0
                 where id = any(${jobs.map((j) => j.id)}::bigint[])`;
      }
      return ms.sort((x, y) => x - y)[7]!;
    };
    const idle = await medianClaimMs();
    // 4,990 heads wait for a retry: 44,910 members are blocked, all older than the 10 ready heads.
    await db`update pgq.jobs set run_at = now() + interval '1 hour', attempts = 1
             where id in (select min(id) from pgq.jobs where queue = 'many-groups' group by group_key order by min(id) limit 4990)`;
    await db`analyze pgq.jobs`;
    const blocked = await medianClaimMs();
    const [plan] = await db`explain (analyze, format json)
      select id from pgq.jobs j
      where j.queue = 'many-groups' and j.locked_until is null and j.run_at <= now() and not j.group_waiting
      order by j.priority, j.run_at, j.id limit 8 for update skip locked`;
    const scan = JSON.stringify(plan!["QUERY PLAN"]);
    t.diagnostic(`claim of 8, median: ${idle.toFixed(2)} ms idle, ${blocked.toFixed(2)} ms with 44,910 blocked members`);
    assert.match(scan, /"Index Name":"jobs_claim"/);
    assert.match(scan, /"Actual Rows":8/);
    assert.doesNotMatch(scan, /"Rows Removed by Filter":[1-9]\d{2,}/, "the claim scan walked over blocked members");
    assert.ok(blocked < idle * 5 + 5, `claims slowed from ${idle.toFixed(2)} ms to ${blocked.toFixed(2)} ms`);
  } finally {
    await sql.end();
  }
});
