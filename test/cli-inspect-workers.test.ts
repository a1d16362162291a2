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
