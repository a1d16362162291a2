import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { ValidationError, type Job } from "../src/index.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();

async function live(queue: string) {
  return db`select id, payload, priority, run_at, max_attempts from pgq.jobs where queue = ${queue} order by id`;
}

test("10 concurrent enqueues with one dedupe key: one job, and all 10 get its id", async () => {
  const pools = Array.from({ length: 10 }, () => postgres(url, { max: 1, onnotice: () => {} }));
  try {
    // The first holds its insert uncommitted, so the other nine meet it on the unique index.
    let commit!: () => void;
    let firstId = "";
    const first = pools[0]!.begin(async (tx) => {
      firstId = (await q.enqueue("dd-race", { n: 0 }, { dedupeKey: "k", tx })).id;
      await new Promise<void>((r) => (commit = r));
    });
    await waitFor(() => firstId !== "", { what: "the first insert" });
    const others = pools.slice(1).map((p, i) => p.begin((tx) => q.enqueue("dd-race", { n: i + 1 }, { dedupeKey: "k", tx })));
    await waitFor(async () => (await db`select from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`).length === 9, {
      what: "nine enqueues waiting on the first",
    });
    commit();
    await first;
    const ids = (await Promise.all(others)).map((r) => r.id);
    assert.deepEqual(ids, Array(9).fill(firstId));
    const rows = await live("dd-race");
    assert.deepEqual(rows.map((r) => [r.id, r.payload]), [[firstId, { n: 0 }]]);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
  // And without choreography, straight from the pool.
  const ids = await Promise.all(Array.from({ length: 10 }, (_, n) => q.enqueue("dd-pool", { n }, { dedupeKey: "k" })));
  assert.equal(new Set(ids.map((r) => r.id)).size, 1);
  assert.equal((await live("dd-pool")).length, 1);
});

test("a duplicate changes nothing about the live job", async () => {
  const { id } = await q.enqueue("dd-same", { v: 1 }, { dedupeKey: "report", priority: 5, delayMs: 60_000, maxAttempts: 3 });
  const [before] = await live("dd-same");
  const again = await q.enqueue("dd-same", { v: 2 }, { dedupeKey: "report", priority: -5, maxAttempts: 9 });
  assert.equal(again.id, id);
  assert.deepEqual([...(await live("dd-same"))], [before]);
  assert.deepEqual(await q.enqueueMany("dd-same", [{ v: 3 }, { v: 4 }], { dedupeKey: "report" }), [id, id]);
  // Keys are per queue, and jobs without a key are never deduplicated.
  assert.notEqual((await q.enqueue("dd-other", { v: 1 }, { dedupeKey: "report" })).id, id);
  await q.enqueueMany("dd-same", [{ v: 5 }, { v: 5 }]);
  assert.equal((await live("dd-same")).length, 3);
});

test("a running or retrying job still holds its key; once completed or dead, the key is free", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let attempts = 0;
  const { id } = await q.enqueue("dd-running", { n: 1 }, { dedupeKey: "k", backoff: { baseMs: 100, maxMs: 100 } });
  const worker = q.work("dd-running", async (job: Job) => {
    attempts = job.attempts;
    if (job.attempts === 1) throw new Error("first attempt fails");
    await released;
  }, { mode: "lease" });
  await waitFor(async () => attempts === 1 && (await db`select from pgq.jobs where id = ${id} and locked_until is null`).length === 1, {
    what: "the job to wait for its retry",
  });
  assert.equal((await q.enqueue("dd-running", { n: 2 }, { dedupeKey: "k" })).id, id, "a retrying job holds its key");
  await waitFor(() => attempts === 2, { what: "the second attempt" });
  assert.equal((await q.enqueue("dd-running", { n: 3 }, { dedupeKey: "k" })).id, id, "a running job holds its key");
  release();
  await waitFor(async () => (await live("dd-running")).length === 0, { what: "completion" });
  await worker.stop();
  const next = await q.enqueue("dd-running", { n: 4 }, { dedupeKey: "k" });
  assert.notEqual(next.id, id);
  // A dead job does not hold its key either.
  await db`delete from pgq.jobs where id = ${next.id}`;
  const doomed = await q.enqueue("dd-dead", {}, { dedupeKey: "k", maxAttempts: 1 });
  const dying = q.work("dd-dead", () => {
    throw new Error("dies");
  });
  await waitFor(async () => (await db`select from pgq.dead_jobs where id = ${doomed.id}`).length === 1, { what: "the job to die" });
  await dying.stop();
  assert.notEqual((await q.enqueue("dd-dead", {}, { dedupeKey: "k" })).id, doomed.id);
});

test("bad dedupe keys are refused before any SQL", async () => {
  for (const key of ["", "x".repeat(513), "a\u0000b", 42]) {
    await assert.rejects(q.enqueue("dd-bad", {}, { dedupeKey: key as string }), ValidationError);
  }
  assert.equal((await live("dd-bad")).length, 0);
});
