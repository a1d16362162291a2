// PostgreSQL restarted under load (`pg_ctl restart -m fast`, and `-m immediate`, a crash),
// four real `pgq work` processes busy: no acknowledged enqueue is lost, none runs twice in
// transaction mode, claiming resumes within seconds of the server's return, LISTEN comes
// back so that wake-ups are fast again, and no job is left running.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { startCli } from "./helpers/cli.js";
import { ownServer } from "./helpers/own-server.js";
import { waitFor } from "./helpers/wait.js";

const WORKERS = 4;
const CONCURRENCY = 4;
/** Resuming within seconds: the bound is generous for a loaded 2-core machine, not a speed target. */
const RECOVERY_BOUND_MS = 15_000;

const server = await ownServer();
const db = postgres(server.databaseUrl, { max: 2, onnotice: () => {} });
await db`create table effects (job_id bigint not null, queue text not null, at timestamptz not null default clock_timestamp())`;
const q = await connect({ databaseUrl: server.databaseUrl });

function startWorker(queue: string, mode: string): ChildProcess {
  const child = startCli(
    [
      "work", queue, "--handler", "test/fixtures/chaos-handler.mjs", "--mode", mode,
      "--concurrency", String(CONCURRENCY), "--lease-ms", "3000",
      // Only a notification (or a failed claim's retry) makes a worker claim: the poll never does here.
      "--poll-interval-ms", "600000",
    ],
    { databaseUrl: server.databaseUrl },
  );
  child.stdout!.resume();
  child.stderr!.resume();
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", () => r()));
}

const effectsOf = (queue: string) => db<{ job_id: string; n: number }[]>`
  select job_id, count(*)::int as n from effects where queue = ${queue} group by job_id`;

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
      await waitFor(async () => (await effectsOf(queue)).length > 300, { timeoutMs: 30_000, what: "workers busy before the restart" });

      const [{ at: restartedAt }] = await db<[{ at: Date }]>`select clock_timestamp() as at`;
      await server.restart(restart);
      const back = Date.now();
      const effectsBefore = (await effectsOf(queue)).length;
      await waitFor(async () => (await effectsOf(queue)).length > effectsBefore + 100, {
        timeoutMs: RECOVERY_BOUND_MS,
        what: "jobs to run again after the restart",
      });
      const resumedMs = Date.now() - back;
      producing = false;
      await producer;

      await waitFor(async () => (await db`select count(*)::int as n from pgq.jobs where queue = ${queue}`)[0]!.n === 0, {
        timeoutMs: 30_000,
        what: "every acknowledged job to run and leave pgq.jobs",
      });
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

      const runs = new Map((await effectsOf(queue)).map((r) => [r.job_id, r.n]));
      assert.deepEqual(acknowledged.filter((jobId) => !runs.has(jobId)), [], "no acknowledged job was lost");
      const extra = [...runs.values()].reduce((sum, n) => sum + n - 1, 0);
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
      for (const w of workers) w.kill("SIGTERM");
      await Promise.all(workers.map(exited));
    }
  });
}

after(async () => {
  await q.close();
  await db.end();
});
