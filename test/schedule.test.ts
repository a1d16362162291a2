import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import postgres, { type Sql } from "postgres";
import { connect, ValidationError, type Job } from "../src/index.js";
import { runDueSchedules } from "../src/maintenance/scheduler.js";
import { tables } from "../src/db/tables.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();
const silent = pino({ level: "silent" });

/** A scheduler step on its own connection, as another worker process would run it. */
async function step(sql: Sql = db): Promise<string[]> {
  return (await runDueSchedules(sql, tables(sql, "pgq"), silent)).enqueued;
}

async function row(name: string) {
  const [r] = await db`select *, next_tick_at > now() as in_future from pgq.schedules where name = ${name}`;
  return r!;
}

async function jobs(queue: string) {
  return db`select id, payload, run_at from pgq.jobs where queue = ${queue} order by id`;
}

test("schedule() stores the schedule; again unchanged keeps its next tick, a new expression resets it", async () => {
  await q.schedule("nightly", "30 2 * * *", "reports", { kind: "nightly" });
  const [listed] = await q.schedules();
  assert.equal(listed!.name, "nightly");
  assert.deepEqual({ ...listed, nextTickAt: undefined }, {
    name: "nightly", cron: "30 2 * * *", timezone: "UTC", queue: "reports", payload: { kind: "nightly" },
    catchUp: "latest", nextTickAt: undefined, lastTickAt: null,
  });
  assert.equal(listed!.nextTickAt.toISOString().slice(11), "02:30:00.000Z");
  // An application that calls schedule() at every start must not lose a pending (missed) tick.
  await db`update pgq.schedules set next_tick_at = next_tick_at - interval '1 day' where name = 'nightly'`;
  const before = (await row("nightly")).next_tick_at as Date;
  await q.schedule("nightly", "30 2 * * *", "reports", { kind: "nightly, v2" });
  assert.deepEqual((await row("nightly")).next_tick_at, before);
  assert.deepEqual((await row("nightly")).payload, { kind: "nightly, v2" });
  await q.schedule("nightly", "45 3 * * *", "reports");
  assert.equal(((await row("nightly")).next_tick_at as Date).toISOString().slice(11), "03:45:00.000Z");
  assert.equal(await q.unschedule("nightly"), true);
  assert.equal(await q.unschedule("nightly"), false);
  assert.deepEqual(await q.schedules(), []);
});

test("cron expressions are read in the schedule's time zone", async () => {
  await q.schedule("ny-morning", "0 9 * * 1-5", "tz", null, { timezone: "America/New_York" });
  const next = (await row("ny-morning")).next_tick_at as Date;
  const local = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "numeric", minute: "numeric", weekday: "short", hour12: false }).format(next);
  assert.match(local, /^(Mon|Tue|Wed|Thu|Fri),? 09:00$/);
  await q.unschedule("ny-morning");
});

test("bad schedules are refused before any SQL", async () => {
  const cases: [string, unknown, unknown, object?][] = [
    ["bad cron", "every minute", "q"],
    ["seven fields", "0 0 0 1 1 * 2030", "q"],
    ["out of range", "61 * * * *", "q"],
    ["never fires", "0 0 30 2 *", "q"],
    ["bad zone", "* * * * *", "q", { timezone: "Mars/Olympus" }],
    ["bad catch-up", "* * * * *", "q", { catchUp: "all" }],
    ["bad queue", "* * * * *", " q"],
    ["", "* * * * *", "q"],
  ];
  for (const [name, cron, queue, options] of cases) {
    await assert.rejects(q.schedule(name, cron as string, queue as string, null, options), ValidationError, `${name}`);
  }
  await assert.rejects(q.schedule("bad cron", "every minute", "q"), /use 5 fields .* or 6 with seconds first/);
  assert.deepEqual(await q.schedules(), []);
});

test("8 schedulers racing for one due tick enqueue exactly one job", async () => {
  await q.schedule("race", "0 0 1 1 *", "race", { n: 1 });
  await db`update pgq.schedules set next_tick_at = date_trunc('year', now()) where name = 'race'`;
  const pools = Array.from({ length: 8 }, () => postgres(url, { max: 1, onnotice: () => {} }));
  try {
    const enqueued = (await Promise.all(pools.map((p) => step(p)))).flat();
    assert.equal(enqueued.length, 1);
    const all = await jobs("race");
    assert.deepEqual(all.map((j) => j.id), enqueued);
    const r = await row("race");
    assert.equal(r.in_future, true);
    assert.deepEqual(r.last_tick_at, all[0]!.run_at);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
  await q.unschedule("race");
});

test("a scheduler that read the tick before another enqueued it inserts nothing (scripted interleaving)", async () => {
  await q.schedule("interleaved", "0 0 1 1 *", "interleaved");
  await db`update pgq.schedules set next_tick_at = date_trunc('year', now()) where name = 'interleaved'`;
  const a = postgres(url, { max: 1, onnotice: () => {} });
  const b = postgres(url, { max: 1, onnotice: () => {} });
  try {
    let commitA!: () => void;
    let aEnqueued: string[] = [];
    const aDone = a.begin(async (tx) => {
      aEnqueued = await step(tx as unknown as Sql); // holds the schedule's row lock until commit
      await new Promise<void>((r) => (commitA = r));
    });
    await waitFor(() => aEnqueued.length === 1, { what: "A to enqueue" });
    // B reads the old next_tick_at (A has not committed), then waits on the row lock.
    const bDone = step(b);
    await waitFor(async () => (await db`select from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`).length > 0, {
      what: "B to wait for A's row lock",
    });
    commitA();
    await aDone;
    assert.deepEqual(await bDone, []);
    assert.equal((await jobs("interleaved")).length, 1);
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
  await q.unschedule("interleaved");
});

test('catchUp "latest": ticks missed while nothing ran give one job, for the latest of them', async () => {
  await q.schedule("minutely", "* * * * *", "catch-up-latest");
  await db`update pgq.schedules set next_tick_at = date_trunc('minute', now()) - interval '90 minutes' where name = 'minutely'`;
  assert.equal((await step()).length, 1);
  assert.deepEqual(await step(), []);
  const [job] = await jobs("catch-up-latest");
  const [expected] = await db`select date_trunc('minute', now()) as tick`;
  assert.deepEqual(job!.run_at, expected!.tick);
  assert.equal((await row("minutely")).in_future, true);
  await q.unschedule("minutely");
});

test('catchUp "none": missed ticks are skipped, a tick that is merely late still runs', async () => {
  await q.schedule("skipper", "* * * * *", "catch-up-none", null, { catchUp: "none" });
  await db`update pgq.schedules set next_tick_at = date_trunc('minute', now()) - interval '90 minutes' where name = 'skipper'`;
  assert.deepEqual(await step(), []);
  const skipped = await row("skipper");
  assert.equal(skipped.in_future, true);
  assert.equal(skipped.last_tick_at, null);
  // Daily at the second that just passed: one tick due, a moment late.
  const [now] = await db`select date_trunc('second', now()) as tick`;
  const tick = now!.tick as Date;
  const daily = `${tick.getUTCSeconds()} ${tick.getUTCMinutes()} ${tick.getUTCHours()} * * *`;
  await q.schedule("late", daily, "catch-up-none", null, { catchUp: "none" });
  await db`update pgq.schedules set next_tick_at = ${tick} where name = 'late'`;
  assert.equal((await step()).length, 1);
  assert.equal((await jobs("catch-up-none")).length, 1);
  await q.unschedule("skipper");
  await q.unschedule("late");
});

test("schedules survive restarts: a worker started later enqueues the missed tick once", async () => {
  const before = await connect({ databaseUrl: url });
  await before.schedule("yearly", "0 0 1 1 *", "restart", { from: "the first process" });
  await before.close();
  // Two yearly ticks were missed while nothing ran.
  await db`update pgq.schedules set next_tick_at = date_trunc('year', now()) - interval '1 year' where name = 'yearly'`;
  const ran: unknown[] = [];
  const worker = q.work("restart", (job) => void ran.push(job.payload));
  await waitFor(async () => ran.length === 1 && (await row("yearly")).in_future, { what: "the missed tick's job" });
  await worker.stop();
  assert.deepEqual(ran, [{ from: "the first process" }]);
  assert.equal((await jobs("restart")).length, 0);
  await q.unschedule("yearly");
});

test("two workers and an every-second cron: one job per tick", async () => {
  await q.schedule("every-second", "* * * * * *", "ticks");
  const ticks: number[] = [];
  const handler = async (job: Job, ctx: { sql: Sql | postgres.TransactionSql }) => {
    const [r] = await ctx.sql`select run_at from pgq.jobs where id = ${job.id}`;
    ticks.push((r!.run_at as Date).getTime());
  };
  const workers = [q.work("ticks", handler, { concurrency: 2 }), q.work("ticks", handler, { concurrency: 2 })];
  await waitFor(() => ticks.length >= 2, { timeoutMs: 5_000, what: "two ticks' jobs" });
  await q.unschedule("every-second");
  await Promise.all(workers.map((w) => w.stop()));
  const left = (await jobs("ticks")).map((j) => (j.run_at as Date).getTime());
  const all = [...ticks, ...left];
  assert.equal(new Set(all).size, all.length, `a tick got two jobs: ${all.map((t) => new Date(t).toISOString())}`);
  for (const t of all) assert.equal(t % 1000, 0, "a job's run_at is its tick");
});
