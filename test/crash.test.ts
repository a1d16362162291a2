import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { test } from "node:test";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();
await db`create table effects (job_id bigint not null, queue text)`;

/** Runs a worker process until it exits; resolves with the signal that ended it. */
function runWorker(queue: string, mode: string): Promise<NodeJS.Signals | null> {
  const child = fork("test/fixtures/worker.ts", [queue, mode, "300"], {
    env: { ...process.env, DATABASE_URL: url },
    execArgv: ["--import", "tsx"],
    stdio: "inherit",
  });
  return new Promise((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
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
    const worker = q.work(queue, async (job, ctx) => {
      await ctx.sql`insert into effects (job_id) values (${job.id})`;
    }, { mode: mode as "transaction" | "lease", pollIntervalMs: 100 });
    const dead = await waitFor(async () => (await db`select * from pgq.dead_jobs where id = ${id}`)[0], { what: "the poison job in dead_jobs" });
    await waitFor(async () => (await db`select from effects where job_id = ${healthy}`).length === 1, { what: "the healthy job" });
    await worker.stop();
    assert.equal(dead!.attempts, 2);
    assert.match(dead!.last_error, /stopped without finishing the attempt/);
    assert.equal((dead!.errors as unknown[]).length, 2);
    const effects = await db`select count(*)::int as n from effects where job_id = ${id}`;
    // Transaction mode: the dying transactions rolled back their writes. Lease mode: the
    // writes went through the pool and committed before each crash.
    assert.equal(effects[0]!.n, mode === "transaction" ? 0 : 2);
  });
}
