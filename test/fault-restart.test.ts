// PostgreSQL restarted under load (`pg_ctl restart -m fast`, and `-m immediate`, a crash),
// four real `pgq work` processes busy: no acknowledged enqueue is lost, none runs twice in
// transaction mode, claiming resumes within seconds of the server's return, LISTEN comes
// back so that wake-ups are fast again, and no job is left running.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { effectsTable } from "./helpers/effects.js";
import { ownServer } from "./helpers/own-server.js";
import { drained } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const WORKERS = 4;
const CONCURRENCY = 4;
/** Resuming within seconds: the bound is generous for a loaded 2-core machine, not a speed target. */
const RECOVERY_BOUND_MS = 15_000;

const server = await ownServer();
const db = postgres(server.databaseUrl, { max: 2, onnotice: () => {} });
const effects = await effectsTable(db);
const q = await connect({ databaseUrl: server.databaseUrl });

const startWorker = (queue: string, mode: "transaction" | "lease") => pgqWork(queue, {
  handler: "test/fixtures/chaos-handler.mjs", mode, concurrency: CONCURRENCY, leaseMs: 3000,
  // Only a notification (or a failed claim's retry) makes a worker claim: the poll never does here.
  pollIntervalMs: 600_000,
  databaseUrl: server.databaseUrl,
});
const ranJobs = async (queue: string) => (await effects.tally(queue)).size;

for (const [mode, restart] of [["transaction", "fast"], ["transaction", "immediate"], ["lease", "immediate"]] as const) {
  test(`pg_ctl restart -m ${restart} under load, ${WORKERS} workers in ${mode} mode`, async () => {
    const queue = `restart-${mode}-${restart}`;
    const workers = Array.from({ length: WORKERS }, () => startWorker(queue, mode));
    try {
      // A producer that keeps enqueuing through the restart; only ids it got back are acknowledged.
      const acknowledged: string[] = [];
      let producing = true;
      const producer = (async () => {
        while (producing) {
          try {
            acknowledged.push(...(await q.enqueueMany(queue, Array.from({ length: 5 }, () => ({ sleepMs: 10 })))));
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      })();
      await waitFor(async () => (await ranJobs(queue)) > 300, { timeoutMs: 30_000, what: "workers busy before the restart" });

      const [{ at: restartedAt }] = await db<[{ at: Date }]>`select clock_timestamp() as at`;
      await server.restart(restart);
      const back = Date.now();
      const ranBefore = await ranJobs(queue);
      await waitFor(async () => (await ranJobs(queue)) > ranBefore + 100, {
        timeoutMs: RECOVERY_BOUND_MS,
        what: "jobs to run again after the restart",
      });
      const resumedMs = Date.now() - back;
      producing = false;
      await producer;

      // The backlog the producer built up drains at the machine's pace: a bound, not a speed.
      await drained(db, queue, 120_000);
      const drainedMs = Date.now() - back;

      // LISTEN is back: with a ten-minute poll, only a notification starts this job so soon.
      const sent = Date.now();
      const { id } = await q.enqueue(queue, { sleepMs: 0 });
      await waitFor(async () => (await db`select 1 from effects where job_id = ${id}`).length > 0, {
        timeoutMs: 5_000,
        what: "a job enqueued after recovery to be woken for by a notification",
      });
      const wakeMs = Date.now() - sent;
      acknowledged.push(id);

      assert.deepEqual((await effects.outcome(acknowledged)).lost, [], "no acknowledged job was lost");
      const extra = [...(await effects.tally(queue)).values()].reduce((sum, r) => sum + r.runs - 1, 0);
      if (mode === "transaction") assert.equal(extra, 0, "no job's effect exists twice");
      else {
        // Lease mode is at-least-once: only jobs in flight when the server went down (running, or
        // waiting for their batched completion) may run again, so each re-run job first ran just before.
        const early = await db`
          select job_id from effects where queue = ${queue}
          group by job_id having count(*) > 1 and min(at) < ${restartedAt}::timestamptz - interval '5 seconds'`;
        assert.deepEqual([...early], [], "only jobs in flight at the restart ran again");
      }
      assert.equal((await db`select count(*)::int as n from pgq.dead_jobs where queue = ${queue}`)[0]!.n, 0, "no job died");
      console.log(
        `# ${mode}, -m ${restart}: ${acknowledged.length} jobs; claiming resumed ${resumedMs} ms and the queue drained ` +
          `${drainedMs} ms after the server returned; next wake-up ${wakeMs} ms; ${extra} re-runs`,
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

after(async () => {
  await q.close();
  await db.end();
});
