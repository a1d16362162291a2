// Workers SIGKILLed at random under load: nothing is lost, and in transaction mode nothing
// is done twice.
import assert from "node:assert/strict";
import { test } from "node:test";
import { effectsTable } from "./helpers/effects.js";
import { drained, testQueue } from "./helpers/queue.js";
import { pgqWork, type WorkerProcess } from "./helpers/workers.js";

const { q, db, url } = await testQueue();
const effects = await effectsTable(db);

const JOBS = 4000;
const WORKERS = 3;
const CONCURRENCY = 8;
const CHAOS_MS = 12_000;

const startWorker = (queue: string, mode: "transaction" | "lease"): WorkerProcess =>
  pgqWork(queue, { handler: "test/fixtures/chaos-handler.mjs", mode, leaseMs: 1000, concurrency: CONCURRENCY, databaseUrl: url });

for (const mode of ["transaction", "lease"] as const) {
  test(`chaos, ${mode} mode: ${WORKERS} workers x ${CONCURRENCY}, one SIGKILLed about every second`, async () => {
    const queue = `chaos-${mode}`;
    const ids = await q.enqueueMany(queue, Array.from({ length: JOBS }, () => ({ sleepMs: 40 })));
    const workers = Array.from({ length: WORKERS }, () => startWorker(queue, mode));
    let kills = 0;
    const chaosEnds = Date.now() + CHAOS_MS;
    while (Date.now() < chaosEnds) {
      await new Promise((r) => setTimeout(r, 700 + Math.random() * 600));
      const victim = Math.floor(Math.random() * WORKERS);
      await workers[victim]!.stop("SIGKILL");
      kills++;
      workers[victim] = startWorker(queue, mode);
    }
    await drained(db, queue, 90_000);
    await Promise.all(workers.map((w) => w.stop()));

    const runs = [...(await effects.tally(queue)).values()];
    assert.deepEqual((await effects.outcome(ids)).lost, [], "every job ran");
    const extra = runs.reduce((sum, r) => sum + r.runs - 1, 0);
    const dead = await db`select count(*)::int as n from pgq.dead_jobs where queue = ${queue}`;
    assert.equal(dead[0]!.n, 0, "no job died");
    if (mode === "transaction") {
      assert.equal(extra, 0, "every job's effect exists exactly once");
    } else {
      assert.ok(extra <= kills * CONCURRENCY, `${extra} re-runs for ${kills} kills x ${CONCURRENCY}`);
    }
    console.log(`# ${mode}: ${kills} kills, ${extra} re-runs`);
  });
}
