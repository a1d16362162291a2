// `pgq inspect` shows which worker holds each running job, and whether that worker is alive.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { testQueue } from "./helpers/queue.js";
import { nextEvent } from "./helpers/wait.js";

test("inspect lists each worker, alive or not, with the jobs it runs", async () => {
  const { q, url } = await testQueue();
  const { id } = await q.enqueue("held", {});
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const worker = q.work("held", () => held, { mode: "lease" });
  await nextEvent(worker, "started");
  const json = await runCli(["inspect", "--json"], { databaseUrl: url });
  assert.equal(json.code, 0, json.stderr);
  const { workers } = JSON.parse(json.stdout) as { workers: { name: string; alive: boolean; runningJobs: string[] }[] };
  assert.deepEqual(workers.map((w) => [w.name, w.alive, w.runningJobs]), [[worker.name, true, [id]]]);
  const text = await runCli(["inspect"], { databaseUrl: url });
  assert.match(text.stdout, new RegExp(`\\n${worker.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s+yes\\s+held\\s+lease x1\\s+${id}\\n`));
  release();
  await worker.stop();
});

test("inspect --queue lists the queue's running jobs with worker, attempt, start and progress, bounded", async () => {
  const { q, url } = await testQueue();
  const ids = (await q.enqueueMany("busy", [{ step: 1 }, { step: 2 }, { step: 3 }])).map(String);
  await q.enqueue("elsewhere", {});
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let reported = 0;
  let allReported!: () => void;
  const progressed = new Promise<void>((resolve) => (allReported = resolve));
  // Transaction mode, the default: its jobs are in jobs_leased like lease mode's.
  const worker = q.work("busy", async (job, ctx) => {
    await ctx.progress({ done: (job.payload as { step: number }).step, of: 3 });
    if (++reported === 3) allReported();
    await held;
  }, { concurrency: 3 });
  const other = q.work("elsewhere", () => held, { mode: "lease" });
  await Promise.all([progressed, nextEvent(other, "started")]);

  const json = await runCli(["inspect", "--queue", "busy", "--json"], { databaseUrl: url });
  assert.equal(json.code, 0, json.stderr);
  const { runningJobs } = JSON.parse(json.stdout) as { runningJobs: { jobs: { id: string; worker: string; attempt: number; progress: unknown; startedAt: string }[]; more: boolean } };
  assert.equal(runningJobs.more, false);
  assert.deepEqual(runningJobs.jobs.map((j) => j.id).sort(), [...ids].sort(), "only this queue's jobs");
  for (const j of runningJobs.jobs) {
    assert.equal(j.worker, worker.name);
    assert.equal(j.attempt, 1);
    assert.ok(j.startedAt);
  }
  assert.deepEqual(runningJobs.jobs.map((j) => (j.progress as { done: number }).done).sort(), [1, 2, 3]);

  const cut = await q.inspect({ queue: "busy", runningJobsUpTo: 2 });
  assert.equal(cut.runningJobs?.jobs.length, 2);
  assert.equal(cut.runningJobs?.more, true);
  assert.equal((await q.inspect()).runningJobs, undefined, "listed only for one queue");

  const text = await runCli(["inspect", "--queue", "busy"], { databaseUrl: url });
  assert.equal(text.code, 0, text.stderr);
  const name = worker.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  assert.match(text.stdout, new RegExp(`\\n${ids[0]}\\s+${name}\\s+1/25\\s+\\S+ ago\\s+in \\S+\\s+\\{"of":3,"done":1\\}\\n`));

  const bad = await runCli(["inspect", "--queue", " busy "], { databaseUrl: url });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^pgq: [^\n]+\n$/);
  release();
  await Promise.all([worker.stop(), other.stop()]);
});
