// Time follows the database. Real `pgq work` processes (and `pgq enqueue`, `pgq schedule
// add`) run with wall clocks an hour ahead or behind (test/fixtures/clock-skew.mjs), in odd
// time zones, with sessions in other odd time zones: delayed jobs, retries, leases and cron
// ticks must all keep to the database's clock. Each job's handler records when it ran by its
// own clock and by the database's (test/fixtures/clock-handler.mjs).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { runCli, type CliOptions } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork, type WorkerProcess } from "./helpers/workers.js";

const HOUR = 3_600_000;
/** Lease of the long-running workers: the heartbeat renews every leaseMs / 3. */
const LEASE_MS = 4000;
/** How late a job may start after it is due and still count as on time, on a busy machine. */
const PROMPTLY_MS = 20_000;

const { url } = await freshDatabase();
const db = postgres(url, { max: 4, onnotice: () => {} });
const q = await connect({ databaseUrl: url });
await db`
  create table time_runs (job_id bigint, queue text, attempt int, pid int, local_now timestamptz, db_now timestamptz,
                          session_time_zone text, run_at timestamptz, created_at timestamptz, failed_at timestamptz)`;

after(async () => {
  await q.close();
  await db.end();
});

interface Clock {
  name: string;
  skewMs: number;
  /** The process's TZ. */
  tz: string;
  /** Its database sessions' TimeZone. */
  sessionTz: string;
}
const AHEAD: Clock = { name: "an hour ahead", skewMs: HOUR, tz: "Pacific/Chatham", sessionTz: "Asia/Kathmandu" };
const BEHIND: Clock = { name: "an hour behind", skewMs: -HOUR, tz: "Asia/Kathmandu", sessionTz: "America/St_Johns" };

const clockSkew = pathToFileURL(fileURLToPath(new URL("fixtures/clock-skew.mjs", import.meta.url))).href;

function skewed(clock: Clock): CliOptions {
  const session = new URL(url);
  session.searchParams.set("options", `-c timezone=${clock.sessionTz}`);
  return {
    databaseUrl: session.toString(),
    env: {
      NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${clockSkew}`].filter(Boolean).join(" "),
      PGQ_TEST_CLOCK_SKEW_MS: String(clock.skewMs),
      TZ: clock.tz,
    },
  };
}

/** `pgq work` in lease mode under `clock`, with the recording handler. */
function work(clock: Clock, queues: string[], leaseMs = LEASE_MS): WorkerProcess {
  return pgqWork(queues, { handler: "test/fixtures/clock-handler.mjs", mode: "lease", leaseMs, concurrency: 4, ...skewed(clock) });
}

async function cli(clock: Clock, args: string[]): Promise<string> {
  const r = await runCli(args, skewed(clock));
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

interface Run {
  job_id: string;
  attempt: number;
  local_now: Date;
  db_now: Date;
  session_time_zone: string;
  run_at: Date;
  created_at: Date;
  failed_at: Date | null;
}

async function runOf(jobId: string, attempt = 1): Promise<Run> {
  return waitFor(
    async () => (await db<Run[]>`select * from time_runs where job_id = ${jobId} and attempt = ${attempt}`)[0],
    { timeoutMs: 60_000, what: `attempt ${attempt} of job ${jobId}` },
  );
}

/** The run really happened under `clock`: its wall clock was off by the skew, its session in the odd zone. */
function assertUnder(clock: Clock, run: Run): void {
  const offMs = run.local_now.getTime() - run.db_now.getTime();
  assert.ok(Math.abs(offMs - clock.skewMs) < 60_000, `the worker's clock was ${offMs} ms off, not ${clock.skewMs}`);
  assert.equal(run.session_time_zone, clock.sessionTz);
}

/** Started when the database said it was due, and not an hour late. */
function assertOnTime(run: Run, what: string): void {
  const lateMs = run.db_now.getTime() - run.run_at.getTime();
  assert.ok(lateMs >= 0, `${what} started ${-lateMs} ms before its run_at`);
  assert.ok(lateMs < PROMPTLY_MS, `${what} started ${lateMs} ms after its run_at`);
}

async function dbNow(): Promise<Date> {
  return (await db<{ now: Date }[]>`select now()`)[0]!.now;
}

const clocks = [AHEAD, BEHIND];
// Each skewed worker has a queue of its own, so it is the one that runs that queue's jobs.
const queueOf = (clock: Clock) => (clock === AHEAD ? "ahead" : "behind");
const workers = clocks.map((clock) => work(clock, [queueOf(clock), "cron"]));

test("delayed jobs enqueued and run by skewed processes start when the database says", async () => {
  for (const clock of clocks) {
    const queue = queueOf(clock);
    const delayed = await cli(clock, ["enqueue", queue, '{"case":"delay"}', "--delay", "3s"]);
    const runAt = new Date((await dbNow()).getTime() + 4000);
    const at = await cli(clock, ["enqueue", queue, '{"case":"run-at"}', "--run-at", runAt.toISOString()]);
    const delayedRun = await runOf(delayed);
    const atRun = await runOf(at);
    assertUnder(clock, delayedRun);
    assert.equal(delayedRun.run_at.getTime() - delayedRun.created_at.getTime(), 3000, `${clock.name}: --delay counts from the database's now()`);
    assertOnTime(delayedRun, `${clock.name}: the --delay job`);
    assert.equal(atRun.run_at.getTime(), runAt.getTime());
    assertOnTime(atRun, `${clock.name}: the --run-at job`);
  }
});

test("a retry waits its backoff by the database's clock", async () => {
  for (const clock of clocks) {
    const { id } = await q.enqueue(queueOf(clock), { failOnAttempt: 1 }, { backoff: { baseMs: 2000, maxMs: 2000 } });
    const retry = await runOf(id, 2);
    assertUnder(clock, retry);
    // The failure's time and the retry's run_at are both the database's: 2 s, less up to 25% jitter.
    const waitedMs = retry.run_at.getTime() - retry.failed_at!.getTime();
    assert.ok(waitedMs >= 1500 && waitedMs <= 2000, `${clock.name}: the retry was set ${waitedMs} ms after the failure`);
    assertOnTime(retry, `${clock.name}: the retry`);
  }
});

test("skewed workers neither steal a live lease nor hold one past leaseMs", async () => {
  // Three lease periods each, while the other worker's rescue runs every 2 s: an hour-ahead
  // rescuer would see the behind worker's lease as lapsed, an hour-behind renewer would set it an hour short.
  const ids = await Promise.all(clocks.map(async (clock) => (await q.enqueue(queueOf(clock), { sleepMs: 3 * LEASE_MS })).id));
  let samples = 0;
  const deadline = Date.now() + 120_000;
  for (;;) {
    assert.ok(Date.now() < deadline, "the long jobs did not finish within 2 minutes");
    const leases = await db<{ id: string; remaining_ms: number }[]>`
      select id, extract(epoch from locked_until - now()) * 1000 as remaining_ms
      from pgq.jobs where id = any(${ids}::bigint[]) and locked_until is not null`;
    if (leases.length === 0 && (await db`select from pgq.jobs where id = any(${ids}::bigint[])`).length === 0) break;
    for (const lease of leases) {
      // A renewal that commits between this statement's now() and its snapshot reads a hair over leaseMs.
      assert.ok(Number(lease.remaining_ms) <= LEASE_MS + 50, `job ${lease.id}'s lease runs ${lease.remaining_ms} ms more, beyond leaseMs`);
      samples++;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(samples > 10, `only ${samples} samples of running leases`);
  for (const [i, clock] of clocks.entries()) {
    const runs = await db`select attempt from time_runs where job_id = ${ids[i]!}`;
    assert.deepEqual(runs.map((r) => r.attempt), [1], `${clock.name}: the job ran once, never rescued from its live lease`);
  }
  assert.equal((await db`select from pgq.dead_jobs`).length, 0);
});

/** The Asia/Kathmandu (UTC+05:45) wall-clock time of `at`, as cron's minute and hour fields. */
function kathmanduCron(at: Date): string {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Kathmandu", hour: "numeric", minute: "numeric", hourCycle: "h23" }).formatToParts(at);
  const field = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return `${field("minute")} ${field("hour")} * * *`;
}

test("a schedule defined by a skewed `pgq schedule add` starts from the database's now, in its time zone", async () => {
  const minute = (ms: number) => new Date(Math.floor(ms / 60_000) * 60_000);
  const now = (await dbNow()).getTime();
  // Today's tick half an hour from now: an hour-ahead clock would think it past, and pick tomorrow's.
  const soon = minute(now + 30 * 60_000);
  await cli(AHEAD, ["schedule", "add", "soon", kathmanduCron(soon), "cron-defined", "--timezone", "Asia/Kathmandu"]);
  // Today's tick half an hour ago is past: an hour-behind clock would think it still to come.
  const past = minute(now - 30 * 60_000);
  await cli(BEHIND, ["schedule", "add", "past", kathmanduCron(past), "cron-defined", "--timezone", "Asia/Kathmandu"]);
  const next = new Map((await q.schedules()).map((s) => [s.name, s.nextTickAt.getTime()]));
  assert.equal(next.get("soon"), soon.getTime());
  assert.equal(next.get("past"), past.getTime() + 24 * HOUR);
  assert.ok(await q.unschedule("soon"));
  assert.ok(await q.unschedule("past"));
});

test("skewed workers enqueue a cron schedule's ticks by the database's clock, one job per tick", async () => {
  await q.schedule("every-2s", "*/2 * * * * *", "cron", { case: "cron" }, { timezone: "Pacific/Chatham" });
  const ticks = await waitFor(
    async () => {
      const runs = await db<Run[]>`select * from time_runs where queue = 'cron' order by run_at`;
      return runs.length >= 4 ? runs : undefined;
    },
    { timeoutMs: 60_000, what: "4 ticks' jobs" },
  );
  assert.ok(await q.unschedule("every-2s"));
  for (const tick of ticks) {
    assert.equal(tick.run_at.getTime() % 2000, 0, `run_at ${tick.run_at.toISOString()} is a tick`);
    const lateMs = tick.created_at.getTime() - tick.run_at.getTime();
    assert.ok(lateMs >= 0 && lateMs < PROMPTLY_MS, `the job of tick ${tick.run_at.toISOString()} was enqueued ${lateMs} ms after it`);
    assertOnTime(tick, `the job of tick ${tick.run_at.toISOString()}`);
  }
  const distinct = new Set(ticks.map((t) => t.run_at.getTime()));
  assert.equal(distinct.size, ticks.length, "one job per tick");
});

// Before the lapse tests, which need the rescuers they start to be the only ones running.
test("the skewed workers stop cleanly", async () => {
  for (const worker of workers) {
    const r = await worker.stop();
    assert.equal(r.code, 0, r.stderr);
  }
});

/**
 * A worker under `dying` claims a job and is SIGKILLed on its first attempt; then a worker
 * under `rescuing` starts. The job must be rescued no sooner than its lease lapses by the
 * database's clock, and soon after.
 */
async function lapse(queue: string, dying: Clock, rescuing: Clock, leaseMs: number): Promise<void> {
  const dead = work(dying, [queue], leaseMs);
  const { id } = await q.enqueue(queue, { killOnAttempt: 1 });
  const first = await runOf(id);
  assertUnder(dying, first);
  assert.equal((await dead.exited).code, null, "the worker was killed");
  // Its session ended with it, which would rescue the job at once (instant-rescue.test.ts):
  // unregistered, it stands for a worker that only its lease can tell dead (behind PgBouncer, say).
  await db`delete from pgq.workers`;
  const [lease] = await db<{ locked_until: Date }[]>`select locked_until from pgq.jobs where id = ${id}`;
  const lapsesAt = lease!.locked_until.getTime();
  assert.ok(lapsesAt - first.db_now.getTime() <= leaseMs, `the dead worker's lease ran ${lapsesAt - first.db_now.getTime()} ms past its last run`);
  const rescuer = work(rescuing, [queue], leaseMs);
  const second = await runOf(id, 2);
  assertUnder(rescuing, second);
  const rescuedAt = second.failed_at!.getTime();
  assert.ok(rescuedAt >= lapsesAt, `rescued ${lapsesAt - rescuedAt} ms before the lease lapsed`);
  assert.ok(rescuedAt - lapsesAt < PROMPTLY_MS, `rescued ${rescuedAt - lapsesAt} ms after the lease lapsed`);
  const r = await rescuer.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await db`select from pgq.jobs where id = ${id}`).length, 0, "the job completed on its second attempt");
}

test("an hour-behind worker rescues a dead worker's job once its lease lapses by the database's clock", async () => {
  await lapse("lapse-behind", AHEAD, BEHIND, 3000);
});

test("an hour-ahead worker does not rescue a dead worker's job before its lease lapses", async () => {
  // Long enough that the rescuer is running well before the lapse.
  await lapse("lapse-ahead", BEHIND, AHEAD, 8000);
});
