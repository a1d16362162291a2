// The one definition of job state (src/job-state.ts): every live job is in exactly one state, and
// the claim, stats() and inspect() count and take the same jobs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspectQueues } from "../src/admin/inspect.js";
import { tables } from "../src/db/tables.js";
import { JOB_STATES } from "../src/job-state.js";
import { claimJobs } from "../src/sql/claim.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();

/** In `queue`: 2 ready, 1 scheduled, 1 retrying, 1 running, 1 dead, and a group whose head is
 *  ready and whose two other members wait behind it (one of them already due). */
async function everyState(queue: string): Promise<{ ready: string[] }> {
  const ready = await q.enqueueMany(queue, [{}, {}]);
  await q.enqueue(queue, {}, { delayMs: 3_600_000 });
  const [retrying, running, dead] = await q.enqueueMany(queue, [{}, {}, {}]);
  await db`update pgq.jobs set attempts = 1, run_at = now() + interval '1 minute' where id = ${retrying!}`;
  await db`update pgq.jobs set attempts = 1, locked_until = now() + interval '1 minute', lease_token = gen_random_uuid() where id = ${running!}`;
  await db`with gone as (delete from pgq.jobs where id = ${dead!} returning *)
           insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms, errors, created_at)
           select id, queue, payload, priority, 1, 1, 0, 0, '[]', created_at from gone`;
  const { id: head } = await q.enqueue(queue, {}, { groupKey: "g" });
  await q.enqueue(queue, {}, { groupKey: "g" });
  await q.enqueue(queue, {}, { groupKey: "g", delayMs: 3_600_000 });
  return { ready: [...ready, head] };
}

test("every live job is in exactly one state; stats(), inspect() and the claim agree on them", async () => {
  const { ready } = await everyState("states");
  const expected = { ready: 3, scheduled: 3, running: 1, retrying: 1 };

  const byPredicate = Object.fromEntries(
    await Promise.all(Object.entries(JOB_STATES).map(async ([state, predicate]) => {
      const [row] = await db`select count(*)::int as n from pgq.jobs j where j.queue = 'states' and ${db.unsafe(predicate)}`;
      return [state, row!.n as number];
    })),
  );
  assert.deepEqual(byPredicate, expected);
  const inOneState = Object.values(JOB_STATES).map((p) => `(${p})::int`).join(" + ");
  const [{ misfiled }] = await db<[{ misfiled: number }]>`
    select count(*)::int as misfiled from pgq.jobs j where j.queue = 'states' and ${db.unsafe(inOneState)} <> 1`;
  assert.equal(misfiled, 0);

  const { oldestReadyAgeMs, ...stats } = (await q.stats()).queues.find((s) => s.queue === "states")!;
  assert.deepEqual(stats, { queue: "states", ...expected, dead: 1 });
  assert.ok(oldestReadyAgeMs !== null && oldestReadyAgeMs >= 0);
  const inspected = (await q.inspect({ queue: "states" })).queues[0]!;
  assert.deepEqual(
    { ready: inspected.ready, scheduled: inspected.scheduled, running: inspected.running, retrying: inspected.retrying, dead: inspected.dead },
    { ...expected, dead: 1 },
  );
  assert.deepEqual(inspected.estimated, []);

  const { jobs: claimed } = await claimJobs(db, tables(db, "pgq"), { queues: ["states"], limit: 100, worker: "states", leaseMs: 60_000 });
  assert.deepEqual(claimed.map((j) => j.id).sort(), [...ready].sort());
});

test("inspect() stops walking a queue's grouped jobs at the bound, and says scheduled is an estimate", async () => {
  await q.enqueueMany("many-grouped", Array.from({ length: 10 }, () => ({})), { groupKey: "g" });
  const inspected = (await inspectQueues(db, "pgq", { queue: "many-grouped", exactUpTo: 5 })).queues[0]!;
  assert.equal(inspected.ready, 1);
  assert.deepEqual(inspected.estimated, ["scheduled"]);
  assert.ok(inspected.scheduled >= 5, `scheduled ~${inspected.scheduled}`);
});
