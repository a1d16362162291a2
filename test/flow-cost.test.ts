// What flow control costs the claim (issue 16): a limited queue's claim with 10,000 keys,
// next to the same backlog in a queue without limits, which takes the fast path. Figures only.
import assert from "node:assert/strict";
import { test } from "node:test";
import { tables } from "../src/db/tables.js";
import { claimJobs } from "../src/sql/claim.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();
const KEYS = 10_000;
const CLAIMS = 50;

async function load(queue: string): Promise<void> {
  await db`
    insert into pgq.jobs (queue, payload, group_key)
    select ${queue}, '{}', 'tenant-' || (i % ${KEYS}) from generate_series(1, ${KEYS * 3}) i`;
}

/** The median ms of CLAIMS claims of 16, each followed by finishing what it took. */
async function medianClaim(queue: string): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < CLAIMS; i++) {
    const started = performance.now();
    const { jobs } = await claimJobs(db, tables(db, "pgq"), { queues: [queue], limit: 16, worker: "cost", leaseMs: 60_000 });
    ms.push(performance.now() - started);
    assert.equal(jobs.length, 16);
    await db`delete from pgq.jobs where id in ${db(jobs.map((j) => j.id))}`;
  }
  return ms.sort((a, b) => a - b)[Math.floor(CLAIMS / 2)]!;
}

test(`the claim with ${KEYS.toLocaleString("en")} keys: limited (concurrency, key concurrency, rate) and unlimited`, async (t) => {
  await q.setQueue("limited", { concurrency: 1000, keyConcurrency: 1, rateLimit: { count: 100_000, perMs: 1000 } });
  await load("limited");
  await load("unlimited");
  await db`analyze pgq.jobs`;
  // Some jobs running in the limited queue, as there would be: the budget counts them.
  const { jobs: running } = await claimJobs(db, tables(db, "pgq"), { queues: ["limited"], limit: 500, worker: "busy", leaseMs: 60_000 });
  assert.equal(running.length, 500);
  const unlimited = await medianClaim("unlimited");
  const limited = await medianClaim("limited");
  t.diagnostic(`median claim of 16, ${KEYS} keys x 3 jobs: unlimited ${unlimited.toFixed(2)} ms, limited (500 running) ${limited.toFixed(2)} ms`);
});
