// Fair share (issue 16): a tenant with a large backlog does not hold back a tenant with a few
// jobs. Each key has at most keyConcurrency members in the claim index, so a claim walks the
// big tenant's few heads and then the small tenant's: measured here in claim rounds, before
// (no group key: one FIFO) and after (one group key per tenant).
import assert from "node:assert/strict";
import { test } from "node:test";
import { tables } from "../src/db/tables.js";
import { claimJobs } from "../src/sql/claim.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();
const BACKLOG = 100_000;
const ROUND = 16;

/** Enqueues the big tenant's backlog, then the small tenant's 10; claims ROUND at a time until
 *  one of the small tenant's jobs comes out. Returns the claim rounds and the ms it took. */
async function untilSmallTenant(queue: string, keyed: boolean, maxRounds: number): Promise<{ rounds: number; ms: number }> {
  for (let i = 0; i < BACKLOG; i += 10_000) {
    await q.enqueueMany(queue, Array.from({ length: 10_000 }, () => ({ tenant: "big" })), keyed ? { groupKey: "big" } : {});
  }
  const small = new Set(await q.enqueueMany(queue, Array.from({ length: 10 }, () => ({ tenant: "small" })), keyed ? { groupKey: "small" } : {}));
  const started = performance.now();
  for (let rounds = 1; rounds <= maxRounds; rounds++) {
    const { jobs } = await claimJobs(db, tables(db, "pgq"), { queues: [queue], limit: ROUND, worker: "fair", leaseMs: 60_000 });
    if (jobs.some((j) => small.has(j.id))) return { rounds, ms: performance.now() - started };
    // The big tenant's claimed jobs finish, as a worker's would.
    await db`delete from pgq.jobs where id in ${db(jobs.map((j) => j.id))}`;
  }
  return { rounds: Infinity, ms: performance.now() - started };
}

test(`a tenant with 10 jobs behind one with ${BACKLOG.toLocaleString("en")}: its first job within a few claim rounds with group keys`, async (t) => {
  await q.setQueue("keyed", { keyConcurrency: 4 });
  const after = await untilSmallTenant("keyed", true, 10);
  // Without keys the small tenant waits for the whole backlog: count a bounded number of rounds
  // and extrapolate, rather than drain 100,000 jobs here.
  const sample = 200;
  const before = await untilSmallTenant("fifo", false, sample);
  const msPerRound = before.ms / sample;
  t.diagnostic(`with group keys (keyConcurrency 4): small tenant's first job in claim round ${after.rounds}, ${after.ms.toFixed(1)} ms`);
  t.diagnostic(`one FIFO: not within ${sample} rounds; it is job ${BACKLOG + 1}, round ~${Math.ceil((BACKLOG + 1) / ROUND)}, ~${((BACKLOG / ROUND) * msPerRound / 1000).toFixed(1)} s of claims at ${msPerRound.toFixed(2)} ms a round`);
  assert.equal(before.rounds, Infinity);
  assert.ok(after.rounds <= 2, `claim round ${after.rounds}`);
});
