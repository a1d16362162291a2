// The LISTEN connection's health (issue 7, scenario 2): a half-open LISTEN connection is found
// by the listener's own probe and replaced, and a database unreachable for 45 s is waited out
// without a busy loop; in both, jobs enqueued in the gap run within seconds of recovery, and
// none is lost, run twice (effects, in transaction mode) or left running.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pino } from "pino";
import postgres from "postgres";
import { connect, type Job, type JobContext } from "../src/index.js";
import { Listener } from "../src/worker/listener.js";
import { cancelChannel, readyChannel } from "../src/db/schema.js";
import { tables } from "../src/db/tables.js";
import { OwnPool } from "../src/db/own-pool.js";
import { workerSettings } from "../src/worker/settings.js";
import { PgqWorker } from "../src/worker/worker.js";
import { freshDatabase } from "./helpers/db.js";
import { effectsTable } from "./helpers/effects.js";
import { tcpProxy } from "./helpers/tcp-proxy.js";
import { nextEvent, waitFor } from "./helpers/wait.js";

interface LogLine {
  level: number;
  msg: string;
}

function capturedLogger() {
  const lines: LogLine[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const count = (pattern: RegExp) => lines.filter((l) => pattern.test(l.msg)).length;
  return { log, lines, count };
}

const WARN = 40;

async function database() {
  const { url } = await freshDatabase();
  const db = postgres(url, { max: 4, onnotice: () => {} });
  after(() => db.end());
  const effects = await effectsTable(db);
  /** Jobs whose effect is missing or doubled, jobs left in the queue, and dead jobs: all should be empty. */
  const outcome = async (ids: string[]) => ({
    ...(await effects.outcome(ids)),
    leftInQueue: (await db`select id, locked_until from pgq.jobs`).length,
    dead: (await db`select id from pgq.dead_jobs`).length,
  });
  return { url, db, recordEffect: effects.record, outcome };
}

test("a half-open LISTEN connection is noticed by its probe and replaced; the job enqueued meanwhile runs", async () => {
  const { url, db, recordEffect, outcome } = await database();
  const proxy = await tcpProxy(url);
  const { log, lines, count } = capturedLogger();
  // Only the LISTEN connection goes through the proxy; the pool and the slots connect directly.
  const pool = new OwnPool(() => postgres(url, { max: 3, onnotice: () => {} }), log);
  const listener = new Listener(proxy.url(url), readyChannel("pgq"), log, cancelChannel("pgq"));
  // With a 10-minute poll, only a notification or the listener's "restored" starts a job soon.
  const settings = workerSettings("halfopen", recordEffect, { pollIntervalMs: 600_000 });
  const worker = new PgqWorker(settings, recordEffect, {
    claims: pool, pool, refused: (error) => error as Error, connection: url, listener, tables: tables(pool.sql, "pgq"), log, maxResultBytes: 1024,
  });
  await worker.ready;
  await waitFor(() => count(/first probe was heard/) === 1, { what: "the listener's first probe" });

  const ids: string[] = [];
  const insert = async () => {
    const [row] = await db`select pgq.enqueue('halfopen', '{}') as id`;
    ids.push(row!.id as string);
  };
  let completed = nextEvent(worker, "completed", 5_000);
  await insert();
  await completed;

  proxy.stall();
  const stalledAt = Date.now();
  const lost = nextEvent(listener, "lost", 40_000);
  completed = nextEvent(worker, "completed", 50_000);
  await insert(); // its notification goes nowhere
  await lost;
  const noticedInMs = Date.now() - stalledAt;
  await completed;
  const ranInMs = Date.now() - stalledAt;
  assert.equal(count(/LISTEN connection is silent/), 1, "the worker logged the silent listener");
  assert.ok(lines.some((l) => l.level === WARN && /silent/.test(l.msg)), "as a warning");
  // Probe every 5 s, heard within 5 s: noticed in about 10 s; generous for a loaded machine.
  assert.ok(noticedInMs < 30_000, `noticed after ${noticedInMs} ms`);

  // The new connection delivers: the next job starts on its notification.
  completed = nextEvent(worker, "completed", 5_000);
  await insert();
  await completed;
  await worker.stop();
  // The listener and the pool are the client's, which this test stands in for.
  await listener.close();
  await pool.end();

  assert.deepEqual(await outcome(ids), { lost: [], duplicated: [], leftInQueue: 0, dead: 0 });
  console.log(`# half-open LISTEN: noticed ${noticedInMs} ms after the stall, the gap's job done after ${ranInMs} ms`);
});

test("the database unreachable for 45 s: no busy loop, and jobs run within seconds of its return", async () => {
  const { url, recordEffect, outcome } = await database();
  const proxy = await tcpProxy(url);
  const { log, count } = capturedLogger();
  // Everything the worker does goes through the proxy; the test enqueues directly.
  const q = await connect({ databaseUrl: proxy.url(url), logger: log });
  const direct = await connect({ databaseUrl: url });
  after(() => direct.close());
  const worker = q.work("outage", async (job: Job, ctx: JobContext) => {
    await recordEffect(job, ctx);
    await new Promise((r) => setTimeout(r, 20));
  }, { concurrency: 4, leaseMs: 5_000 });
  await worker.ready;
  await waitFor(() => count(/first probe was heard/) === 1, { what: "the listener's first probe" });

  const ids = await direct.enqueueMany("outage", Array.from({ length: 40 }, (_, i) => ({ before: i })));
  await nextEvent(worker, "completed"); // jobs are running when the database goes away

  proxy.refuse();
  const acceptedBefore = proxy.accepted;
  const claimFailuresBefore = count(/claiming jobs failed/);
  // Jobs enqueued in the gap: their notifications reach no one.
  ids.push(...(await direct.enqueueMany("outage", Array.from({ length: 30 }, (_, i) => ({ gap: i })))));
  await new Promise((r) => setTimeout(r, 45_000)); // the outage itself
  const attempts = proxy.accepted - acceptedBefore;
  const claimFailures = count(/claiming jobs failed/) - claimFailuresBefore;
  proxy.restore();
  const back = Date.now();

  const gap = ids.slice(40);
  await waitFor(async () => (await outcome(gap)).lost.length === 0, { timeoutMs: 30_000, what: "the gap's jobs to run" });
  const gapRanInMs = Date.now() - back;
  // Jobs that were running when the database went away wait for their lease (5 s) to lapse, then run again.
  await waitFor(async () => (await outcome(ids)).leftInQueue === 0, { timeoutMs: 60_000, what: "every job to run" });
  const drainedInMs = Date.now() - back;
  ids.push(...(await q.enqueueMany("outage", [{ after: 1 }, { after: 2 }])));
  await waitFor(async () => (await outcome(ids)).leftInQueue === 0, { timeoutMs: 10_000, what: "jobs enqueued after the return" });
  await q.close();

  assert.deepEqual(await outcome(ids), { lost: [], duplicated: [], leftInQueue: 0, dead: 0 });
  // A busy loop makes thousands of attempts in 45 s; backoff makes a few a second at most.
  assert.ok(attempts < 250, `${attempts} connection attempts in 45 s`);
  assert.ok(claimFailures < 40, `${claimFailures} failed claims in 45 s`);
  assert.ok(gapRanInMs < 15_000, `the gap's jobs ran ${gapRanInMs} ms after the database came back`);
  console.log(
    `# 45 s outage: ${attempts} connection attempts, ${claimFailures} failed claims; ` +
      `the gap's jobs ran ${gapRanInMs} ms after the return, the queue drained in ${drainedInMs} ms`,
  );
});
