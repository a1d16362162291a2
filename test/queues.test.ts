// Per-queue settings in pgq.queues: pause and resume across worker processes, settings that
// survive restarts, and bad input refused before anything is written.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ValidationError } from "../src/index.js";
import { runCli } from "./helpers/cli.js";
import { drained, testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const { q, db, url } = await testQueue();
await db`create table cli_marks (job_id bigint, queue text, attempt int)`;

test("setQueue stores settings, keeps what it is not given, and null clears a limit", async () => {
  const defaults = await q.setQueue("settings", {});
  assert.deepEqual({ ...defaults, updatedAt: null }, {
    queue: "settings", paused: false, concurrency: null, keyConcurrency: null, rateLimit: null, keyRateLimit: null,
    retentionMs: 7 * 24 * 3600 * 1000, ttlMs: null, updatedAt: null,
  });
  await q.setQueue("settings", { concurrency: 5, rateLimit: { count: 100, perMs: 60_000 }, retentionMs: 0 });
  const changed = await q.setQueue("settings", { keyConcurrency: 2, ttlMs: 3_600_000 });
  assert.equal(changed.concurrency, 5);
  assert.deepEqual(changed.rateLimit, { count: 100, perMs: 60_000 });
  assert.equal(changed.retentionMs, 0);
  assert.equal(changed.keyConcurrency, 2);
  assert.equal(changed.ttlMs, 3_600_000);
  const cleared = await q.setQueue("settings", { concurrency: null, rateLimit: null, retentionMs: null });
  assert.deepEqual([cleared.concurrency, cleared.rateLimit, cleared.retentionMs, cleared.keyConcurrency], [null, null, 7 * 24 * 3600 * 1000, 2]);
  assert.deepEqual((await q.queues()).map((c) => c.queue), ["settings"]);
});

test("bad settings are refused before any SQL, and change nothing", async () => {
  await q.setQueue("strict", { concurrency: 3 });
  const bad: unknown[] = [
    { concurrency: 0 }, { concurrency: 1.5 }, { concurrency: "5" }, { keyConcurrency: -1 }, { rateLimit: { count: 10 } },
    { rateLimit: { count: 0, perMs: 1000 } }, { keyRateLimit: 5 }, { retentionMs: -1 }, { ttlMs: 0 }, { paused: "yes" },
    { speed: 3 }, "fast", null, [],
  ];
  for (const settings of bad) {
    await assert.rejects(q.setQueue("strict", settings as never), ValidationError, JSON.stringify(settings));
  }
  await assert.rejects(q.setQueue(" padded ", {}), ValidationError);
  assert.equal((await q.queues()).find((c) => c.queue === "strict")!.concurrency, 3);
});

test("pause: workers in several processes stop claiming within a second; running jobs finish; enqueue works; resume wakes them", async () => {
  const queue = "pausable";
  const workers = [1, 2].map(() => pgqWork(queue, { handler: "test/fixtures/cli-handler.mjs", concurrency: 2, databaseUrl: url }));
  await q.enqueueMany(queue, [{ mark: true }, { mark: true }]);
  await drained(db, queue);
  // A job still running when the queue is paused finishes; nothing new starts.
  const { id: slow } = await q.enqueue(queue, { sleepMs: 1500, mark: true });
  await waitFor(async () => (await db`select from pgq.jobs where id = ${slow} and locked_until is not null`).length === 1, { what: "the slow job to start" });
  await q.pause(queue);
  const pausedAt = Date.now();
  const ids = await q.enqueueMany(queue, [{ mark: true }, { mark: true }, { mark: true }]);
  assert.equal(ids.length, 3, "enqueue still works");
  await waitFor(async () => (await db`select from cli_marks where job_id = ${slow}`).length === 1, { what: "the running job to finish" });
  // Longer than a second after the pause, the new jobs are still waiting: no worker claimed them.
  await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + 2000 - Date.now())));
  const [{ waiting }] = await db<[{ waiting: number }]>`select count(*)::int as waiting from pgq.jobs where queue = ${queue} and locked_until is null`;
  assert.equal(waiting, 3);
  assert.equal((await q.inspect({ queue })).queues[0]!.paused, true);

  const resumedAt = Date.now();
  await q.resume(queue);
  await drained(db, queue);
  // Woken by the resume's notification, not the 2 s poll (which only bounds the worst case).
  const resumeMs = Date.now() - resumedAt;
  test.diagnostic?.(`resumed jobs drained ${resumeMs} ms after resume()`);
  assert.equal((await db`select from cli_marks where queue = ${queue}`).length, 6);
  await Promise.all(workers.map((w) => w.stop()));
});

test("pgq pause, resume, queue set and queue list; bad input is one line, exit 2, nothing written", async () => {
  const cli = (...args: string[]) => runCli(args, { databaseUrl: url });
  let r = await cli("pause", "cli-queue");
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await q.queues()).find((c) => c.queue === "cli-queue")!.paused, true);
  r = await cli("resume", "cli-queue");
  assert.equal(r.code, 0, r.stderr);
  r = await cli("queue", "set", "cli-queue", "--concurrency", "4", "--rate", "100/1m", "--retention", "2d", "--ttl", "1h");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cli-queue\s+no\s+4\s+-\s+100\/1m00s\s+-\s+2d00h\s+1h00m/);
  r = await cli("queue", "set", "cli-queue", "--concurrency", "none");
  assert.equal(r.code, 0, r.stderr);
  const config = (await q.queues()).find((c) => c.queue === "cli-queue")!;
  assert.deepEqual([config.paused, config.concurrency, config.rateLimit, config.ttlMs], [false, null, { count: 100, perMs: 60_000 }, 3_600_000]);
  r = await cli("queue", "list", "--json");
  assert.ok((JSON.parse(r.stdout) as { queue: string }[]).some((c) => c.queue === "cli-queue"));

  const before = await db`select * from pgq.queues order by queue`;
  for (const args of [
    ["queue", "set", "cli-queue", "--concurrency", "0"],
    ["queue", "set", "cli-queue", "--rate", "100"],
    ["queue", "set", "cli-queue", "--rate", "0/1s"],
    ["queue", "set", "cli-queue", "--ttl", "5"],
    ["queue", "set", " bad ", "--concurrency", "2"],
    ["queue", "set", "cli-queue", "--key-concurrency", "-1"],
    ["queue", "set", "cli-queue", "--key-rate", "5/0s"],
    ["queue", "set", "cli-queue", "--retention", "soon"],
    ["queue", "set", "cli-queue", "--bogus", "1"],
    ["queue", "set"],
    ["queue", "list", "--bogus"],
    ["queue", "frobnicate"],
    ["pause"],
    ["pause", " bad "],
    ["pause", "a", "b"],
    ["resume"],
    ["resume", ""],
    ["resume", "x".repeat(129)],
  ]) {
    r = await cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^pgq: [^\n]+\n$/, args.join(" "));
    assert.equal(r.stdout, "", args.join(" "));
  }
  assert.deepEqual(await db`select * from pgq.queues order by queue`, before);
});
