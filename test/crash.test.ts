import assert from "node:assert/strict";
import { test } from "node:test";
import { effectsTable } from "./helpers/effects.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";
import { forkWorker } from "./helpers/workers.js";

const { q, db, url } = await testQueue();
const effects = await effectsTable(db);

/** Runs a worker process until it exits; resolves with the signal that ended it. */
async function runWorker(queue: string, mode: string): Promise<NodeJS.Signals | null> {
  return (await forkWorker("test/fixtures/worker.ts", [queue, mode, "300"], url).exited).signal;
}

for (const mode of ["transaction", "lease"]) {
  test(`${mode} mode: a job that kills its worker counts its attempts and reaches dead_jobs`, async () => {
    const queue = `poison-${mode}`;
    const { id } = await q.enqueue(queue, { kill: true, effect: true }, { maxAttempts: 2 });
    // Each run claims the poison job and dies with it; the crashed attempt must still count.
    assert.equal(await runWorker(queue, mode), "SIGKILL");
    const [afterOne] = await db`select attempts from pgq.jobs where id = ${id}`;
    assert.equal(afterOne!.attempts, 1, "the crashed attempt was counted");
    assert.equal(await runWorker(queue, mode), "SIGKILL");

    // Any live worker rescues the lapsed lease: on its last attempt, the job is dead.
    const { id: healthy } = await q.enqueue(queue, { effect: true });
    const worker = q.work(queue, effects.record, { mode: mode as "transaction" | "lease", pollIntervalMs: 100 });
    const dead = await waitFor(async () => (await db`select * from pgq.dead_jobs where id = ${id}`)[0], { what: "the poison job in dead_jobs" });
    await waitFor(async () => (await effects.tally(queue)).has(healthy), { what: "the healthy job" });
    await worker.stop();
    assert.equal(dead!.attempts, 2);
    assert.match(dead!.last_error, /stopped without finishing the attempt/);
    assert.equal((dead!.errors as unknown[]).length, 2);
    // Transaction mode: the dying transactions rolled back their writes. Lease mode: the
    // writes went through the pool and committed before each crash.
    assert.equal((await effects.tally(queue)).get(id)?.runs ?? 0, mode === "transaction" ? 0 : 2);
  });
}
