// Workers SIGKILLed at random under load: nothing is lost, and in transaction mode nothing
// is done twice.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { test } from "node:test";
import { startCli } from "./helpers/cli.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();
await db`create table effects (job_id bigint not null, queue text not null)`;

const JOBS = 4000;
const WORKERS = 3;
const CONCURRENCY = 8;
const CHAOS_MS = 12_000;

/** A real `pgq work` process. */
function startWorker(queue: string, mode: string): ChildProcess {
  const child = startCli(
    ["work", queue, "--handler", "test/fixtures/chaos-handler.mjs", "--mode", mode, "--lease-ms", "1000", "--concurrency", String(CONCURRENCY)],
    { databaseUrl: url },
  );
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", () => r()));
}

for (const mode of ["transaction", "lease"]) {
  test(`chaos, ${mode} mode: ${WORKERS} workers x ${CONCURRENCY}, one SIGKILLed about every second`, async () => {
    const queue = `chaos-${mode}`;
    const ids = await q.enqueueMany(queue, Array.from({ length: JOBS }, () => ({ sleepMs: 40 })));
    const workers = Array.from({ length: WORKERS }, () => startWorker(queue, mode));
    let kills = 0;
    const chaosEnds = Date.now() + CHAOS_MS;
    while (Date.now() < chaosEnds) {
      await new Promise((r) => setTimeout(r, 700 + Math.random() * 600));
      const victim = Math.floor(Math.random() * WORKERS);
      workers[victim]!.kill("SIGKILL");
      await exited(workers[victim]!);
      kills++;
      workers[victim] = startWorker(queue, mode);
    }
    await waitFor(async () => (await db`select count(*)::int as n from pgq.jobs where queue = ${queue}`)[0]!.n === 0, {
      timeoutMs: 90_000,
      what: "every job to finish",
    });
    for (const w of workers) w.kill("SIGTERM");
    await Promise.all(workers.map(exited));

    const runs = await db`select job_id, count(*)::int as n from effects where queue = ${queue} group by job_id`;
    const ran = new Map(runs.map((r) => [r.job_id as string, r.n as number]));
    const missing = ids.filter((id) => !ran.has(id));
    assert.deepEqual(missing, [], "every job ran");
    const extra = runs.reduce((sum, r) => sum + r.n - 1, 0);
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
