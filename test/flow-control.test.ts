// Flow control (issue 16): limits set with q.setQueue() hold across several real `pgq work`
// processes, through a SIGKILLed worker and a PostgreSQL restart; rates hold in every window.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres, { type Sql } from "postgres";
import { connect } from "../src/index.js";
import { ownServer } from "./helpers/own-server.js";
import { drained, testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork, type WorkerProcess } from "./helpers/workers.js";

const HANDLER = "test/fixtures/flow-handler.mjs";
const { q, db, url } = await testQueue();
await prepare(db);

async function prepare(sql: Sql): Promise<void> {
  await sql`create table flow_runs (job_id bigint, attempt int, queue text, started_at timestamptz, ended_at timestamptz)`;
  // Every claim of a job, as the database saw it: the moment its row was leased (before the
  // claim's other work, which an AFTER trigger would wait for).
  await sql`create table flow_claims (job_id bigint, queue text, at timestamptz, group_key text)`;
  await sql.unsafe(`
    create function record_claim() returns trigger language plpgsql as $$
    begin
      insert into flow_claims values (new.id, new.queue, clock_timestamp(), new.group_key);
      return new;
    end $$;
    create trigger record_claim before update of locked_until on pgq.jobs
      for each row when (old.locked_until is null and new.locked_until is not null) execute function record_claim();`);
}

/** Workers started and registered (pgq.workers), so that measurements start with all of them. */
async function startWorkers(sql: Sql, n: number, queue: string, concurrency: number, databaseUrl: string): Promise<WorkerProcess[]> {
  const workers = Array.from({ length: n }, () => pgqWork(queue, { handler: HANDLER, concurrency, databaseUrl }));
  await waitFor(async () => (await sql`select from pgq.workers`).length >= n, { timeoutMs: 60_000, what: `${n} workers to start` });
  return workers;
}

/** Samples the queue's running jobs in pgq.jobs until stopped; returns the most seen at once. */
function sampleRunning(sql: Sql, queue: string): { stop: () => Promise<number> } {
  let max = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const [row] = await sql<[{ n: number }]>`select count(*)::int as n from pgq.jobs where queue = ${queue} and locked_until is not null`;
        max = Math.max(max, row.n);
      } catch {
        // The server is restarting: sample again once it is back.
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return { stop: async () => ((stopped = true), await loop, max) };
}

/** The most handlers of the queue that ran at the same moment, from their start and end rows;
 *  a handler with no end row (its process was killed) ended at `killedAt`. */
async function maxOverlap(sql: Sql, queue: string, killedAt: Date | null = null): Promise<number> {
  const [row] = await sql<[{ n: number | null }]>`
    select max(running)::int as n from (
      select sum(d) over (order by at, d) as running from (
        select started_at as at, 1 as d from flow_runs where queue = ${queue}
        union all select coalesce(ended_at, ${killedAt}), -1 from flow_runs
                  where queue = ${queue} and (ended_at is not null or ${killedAt}::timestamptz is not null)) e) r`;
  return row.n ?? 0;
}

/** The most starts in any window of `ms` that begins at a start. */
async function maxInWindow(sql: Sql, table: "flow_runs" | "flow_claims", column: string, queue: string, ms: number): Promise<number> {
  const [row] = await sql<[{ n: number }]>`
    select coalesce(max(n), 0)::int as n from (
      select (select count(*) from ${sql(table)} b
              where b.queue = ${queue} and b.${sql(column)} >= a.${sql(column)}
                and b.${sql(column)} < a.${sql(column)} + ${ms} * interval '1 millisecond') as n
      from ${sql(table)} a where a.queue = ${queue}) w`;
  return row.n;
}

test("8 processes x concurrency 16 against a queue limited to 5: never more than 5 running, throughput near 5 / job time", async (t) => {
  const queue = "limited";
  const jobMs = 200;
  const jobs = 150;
  await q.setQueue(queue, { concurrency: 5 });
  const startedAt = performance.now();
  const workers = await startWorkers(db, 8, queue, 16, url);
  t.diagnostic(`8 workers started in ${Math.round(performance.now() - startedAt)} ms`);
  const sampler = sampleRunning(db, queue);
  await q.enqueueMany(queue, Array.from({ length: jobs }, () => ({ sleepMs: jobMs })));
  await drained(db, queue, 60_000);
  const sampled = await sampler.stop();
  const overlap = await maxOverlap(db, queue);
  const [span] = await db<[{ s: number; n: number }]>`
    select extract(epoch from max(ended_at) - min(started_at))::float8 as s, count(*)::int as n from flow_runs where queue = ${queue}`;
  t.diagnostic(`most running at once: ${sampled} in pgq.jobs, ${overlap} in the handlers; ${span.n} jobs in ${span.s.toFixed(2)} s = ${(span.n / span.s).toFixed(1)} jobs/s (limit: ${(5 * 1000) / jobMs}/s)`);
  assert.ok(sampled <= 5, `pgq.jobs showed ${sampled} running`);
  assert.ok(overlap <= 5, `the handlers overlapped ${overlap} deep`);
  assert.equal(overlap, 5, "the limit is reached, not just respected");
  assert.equal(span.n, jobs);
  await Promise.all(workers.map((w) => w.stop()));
});

test("a rate of 50 per second across 4 processes: no 1-second window over 20 s holds more than 50 starts", async (t) => {
  const queue = "rated";
  await q.setQueue(queue, { rateLimit: { count: 50, perMs: 1000 } });
  const workers = await startWorkers(db, 4, queue, 16, url);
  await q.enqueueMany(queue, Array.from({ length: 1100 }, () => ({ sleepMs: 5 })));
  const started = performance.now();
  await waitFor(async () => (await db`select from flow_claims where queue = ${queue}`).length >= 1000, { timeoutMs: 40_000, what: "1000 starts" });
  const seconds = (performance.now() - started) / 1000;
  const claimed = await maxInWindow(db, "flow_claims", "at", queue, 1000);
  const handled = await maxInWindow(db, "flow_runs", "started_at", queue, 1000);
  const [attempts] = await db<[{ n: number }]>`select count(*)::int as n from pgq.jobs where queue = ${queue} and attempts > 1`;
  t.diagnostic(`1000 starts in ${seconds.toFixed(1)} s; most in any 1 s window: ${claimed} claimed, ${handled} started by handlers`);
  assert.ok(claimed <= 50, `${claimed} jobs were claimed within one second`);
  assert.ok(seconds >= 19, "1000 starts at 50/s take 19 s at least");
  assert.equal(attempts.n, 0, "a job held back by the rate spends no attempt");
  await Promise.all(workers.map((w) => w.stop()));
});

test("a SIGKILLed worker's slots come back when its jobs are rescued; the limit holds throughout", async (t) => {
  const queue = "killed";
  await q.setQueue(queue, { concurrency: 3 });
  const workers = await startWorkers(db, 3, queue, 4, url);
  const sampler = sampleRunning(db, queue);
  await q.enqueueMany(queue, Array.from({ length: 40 }, () => ({ sleepMs: 300 })));
  await waitFor(async () => (await db`select from flow_runs where queue = ${queue}`).length >= 6, { what: "jobs to run" });
  workers[0]!.child.kill("SIGKILL");
  await workers[0]!.exited;
  const [{ killedAt }] = await db<[{ killedAt: Date }]>`select clock_timestamp() as "killedAt"`;
  await drained(db, queue, 60_000);
  const sampled = await sampler.stop();
  const overlap = await maxOverlap(db, queue, killedAt);
  t.diagnostic(`most running at once: ${sampled} in pgq.jobs, ${overlap} in the handlers`);
  assert.ok(sampled <= 3, `pgq.jobs showed ${sampled} running`);
  assert.ok(overlap <= 3, `the handlers overlapped ${overlap} deep`);
  await Promise.all(workers.slice(1).map((w) => w.stop()));
});

test("limits hold through a PostgreSQL restart, and live on in pgq.queues", async (t) => {
  const server = await ownServer();
  const admin = postgres(server.databaseUrl, { max: 2, onnotice: () => {} });
  t.after(() => admin.end());
  await prepare(admin);
  const own = await connect({ databaseUrl: server.databaseUrl });
  t.after(() => own.close());
  const queue = "restarted";
  await own.setQueue(queue, { concurrency: 2 });
  const workers = await startWorkers(admin, 3, queue, 4, server.databaseUrl);
  const sampler = sampleRunning(admin, queue);
  await own.enqueueMany(queue, Array.from({ length: 40 }, () => ({ sleepMs: 200 })));
  await waitFor(async () => (await admin`select from flow_runs where queue = ${queue}`).length >= 4, { what: "jobs to run" });
  await server.restart("immediate");
  await drained(admin, queue, 90_000);
  const sampled = await sampler.stop();
  t.diagnostic(`most running at once: ${sampled}`);
  assert.ok(sampled <= 2, `pgq.jobs showed ${sampled} running`);
  assert.equal((await own.queues()).find((c) => c.queue === queue)?.concurrency, 2);
  await Promise.all(workers.map((w) => w.stop()));
});

test("keyConcurrency 3: a key runs at most 3 jobs at once, across processes; other keys are not held back", async (t) => {
  const queue = "per-key";
  await q.setQueue(queue, { keyConcurrency: 3 });
  const workers = await startWorkers(db, 2, queue, 8, url);
  const keys = new Map<string, string>();
  for (const key of ["a", "b"]) {
    for (const id of await q.enqueueMany(queue, Array.from({ length: 12 }, () => ({ sleepMs: 150 })), { groupKey: key })) keys.set(id, key);
  }
  await drained(db, queue, 60_000);
  const runs = await db<{ job_id: string; started_at: Date; ended_at: Date }[]>`select job_id::text, started_at, ended_at from flow_runs where queue = ${queue}`;
  const events = runs.flatMap((r) => [
    { key: keys.get(r.job_id)!, at: r.started_at.getTime(), d: 1 },
    { key: keys.get(r.job_id)!, at: r.ended_at.getTime(), d: -1 },
  ]).sort((x, y) => x.at - y.at || x.d - y.d);
  const running = new Map<string, number>();
  let most = 0;
  for (const e of events) {
    running.set(e.key, (running.get(e.key) ?? 0) + e.d);
    most = Math.max(most, running.get(e.key)!);
  }
  const overlap = await maxOverlap(db, queue);
  t.diagnostic(`most of one key at once: ${most}; of the queue: ${overlap}`);
  assert.equal(runs.length, 24);
  assert.equal(most, 3);
  assert.ok(overlap > 3, "two keys run side by side");
  await Promise.all(workers.map((w) => w.stop()));
});

test("keyRateLimit 10 per second: no key starts more than 10 in any 1-second window, and keys do not hold each other back", async (t) => {
  const queue = "key-rated";
  await q.setQueue(queue, { keyConcurrency: 5, keyRateLimit: { count: 10, perMs: 1000 } });
  const workers = await startWorkers(db, 3, queue, 8, url);
  for (const key of ["a", "b"]) await q.enqueueMany(queue, Array.from({ length: 50 }, () => ({ sleepMs: 5 })), { groupKey: key });
  const started = performance.now();
  await drained(db, queue, 60_000);
  const seconds = (performance.now() - started) / 1000;
  const [row] = await db<[{ n: number }]>`
    select coalesce(max(n), 0)::int as n from (
      select (select count(*) from flow_claims b
              where b.queue = a.queue and b.group_key = a.group_key and b.at >= a.at and b.at < a.at + interval '1 second') as n
      from flow_claims a where a.queue = ${queue}) w`;
  const [attempts] = await db<[{ n: number }]>`select count(*)::int as n from flow_claims where queue = ${queue}`;
  t.diagnostic(`100 jobs of 2 keys in ${seconds.toFixed(1)} s; most starts of one key in any 1 s window: ${row.n}`);
  assert.ok(row.n <= 10, `${row.n} starts of one key within a second`);
  assert.equal(attempts.n, 100, "each job claimed once: a held-back job spends no attempt");
  assert.ok(seconds >= 4, "50 starts of a key at 10/s take 4 s at least");
  await Promise.all(workers.map((w) => w.stop()));
});
