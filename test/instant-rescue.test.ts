// Instant rescue (issue 18): a dead worker's session ends with it, and its jobs run again within
// a second or two; a live worker keeps its jobs through a cut connection and a server restart;
// a hung process whose session lives on is rescued by lease expiry only.
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { ownServer } from "./helpers/own-server.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();
const KILLS = 20;

interface Started {
  started: string;
  attempt: number;
}

/** A fixture worker process with default settings; `onStart` hears each job it starts. */
function startWorker(queue: string, mode: string, onStart: (m: Started, child: ChildProcess) => void): Promise<ChildProcess> {
  const child = fork("test/fixtures/rescue-worker.ts", [queue, mode], {
    env: { ...process.env, DATABASE_URL: url },
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    child.on("message", (m: { ready?: string } & Partial<Started>) => {
      if (m.ready) resolve(child);
      else if (m.started) onStart(m as Started, child);
    });
    child.once("exit", (code, signal) => reject(new Error(`worker exited before it was ready (${code ?? signal})`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", () => r()));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

for (const mode of ["transaction", "lease"] as const) {
  test(`${mode} mode, default settings: a SIGKILLed worker's job starts again on another within 2 s, ${KILLS} times`, async (t) => {
    const queue = `kill-${mode}`;
    let holder: { child: ChildProcess; attempt: number } | undefined;
    let startedAgain: ((child: ChildProcess) => void) | undefined;
    const onStart = (m: Started, child: ChildProcess) => {
      holder = { child, attempt: m.attempt };
      startedAgain?.(child);
    };
    const workers = await Promise.all([0, 1, 2].map(() => startWorker(queue, mode, onStart)));
    const { id } = await q.enqueue(queue, { sleepMs: 10 * 60_000 }, { maxAttempts: KILLS + 1 });
    await waitFor(() => holder, { what: "the job to start" });
    const ms: number[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const victim = holder!.child;
      const next = new Promise<ChildProcess>((resolve) => (startedAgain = (child) => child !== victim && resolve(child)));
      const killedAt = performance.now();
      victim.kill("SIGKILL");
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the job did not start again within 10 s")), 10_000));
      await Promise.race([next, timeout]);
      ms.push(performance.now() - killedAt);
      await exited(victim);
      // A fresh worker in the victim's place before the next kill, so that two others are alive.
      workers[workers.indexOf(victim)] = await startWorker(queue, mode, onStart);
    }
    const [job] = await db`select attempts, errors from pgq.jobs where id = ${id}`;
    // Its last attempt sleeps on: no graceful stop would end.
    for (const w of workers) w.kill("SIGKILL");
    await Promise.all(workers.map(exited));
    const worst = Math.max(...ms);
    t.diagnostic(`${mode}: the job started again ${Math.round(median(ms))} ms (median), ${Math.round(worst)} ms (worst) after each of ${KILLS} kills (${ms.map(Math.round).join(" ")})`);
    // The promise is 2 s; the suite runs three files at once on two cores, so one kill's start
    // may queue behind them: the median keeps the promise, and none may take past the lease's
    // fallback (a 30 s lease lapsing would be the old, slow path).
    assert.ok(median(ms) < 2_000, `the job started again within 2 s of a kill, as a rule (median ${Math.round(median(ms))} ms)`);
    assert.ok(worst < 5_000, `and within 5 s of every kill (worst ${Math.round(worst)} ms)`);
    assert.equal(job!.attempts, KILLS + 1, "each killed attempt counted once");
    for (const e of job!.errors as { error: string }[]) assert.match(e.error, /WORKER_LOST|stopped without finishing/);
  });

  test(`${mode} mode, default settings: a job that kills its worker reaches dead_jobs within seconds per attempt`, async (t) => {
    const queue = `poison-${mode}`;
    // A worker in this process on another queue: its client's maintenance does the rescuing.
    const bystander = q.work(`bystander-${mode}`, async () => {});
    await bystander.ready;
    const { id } = await q.enqueue(queue, { kill: true }, { maxAttempts: 3 });
    const started = performance.now();
    for (let attempt = 1; attempt <= 3; attempt++) {
      // It may claim the job, and die, before it says it is ready.
      await startWorker(queue, mode, () => undefined).then(exited, () => undefined);
    }
    const dead = await waitFor(async () => (await db`select attempts, errors from pgq.dead_jobs where id = ${id}`)[0], {
      timeoutMs: 15_000,
      what: "the poison job in dead_jobs",
    });
    const ms = performance.now() - started;
    await bystander.stop();
    t.diagnostic(`${mode}: dead after 3 killing attempts in ${Math.round(ms)} ms, worker start-ups included`);
    assert.equal(dead.attempts, 3);
    assert.equal((dead.errors as unknown[]).length, 3);
  });
}

test("a live worker whose marker connection is cut keeps its jobs: none runs twice", async (t) => {
  const queue = "cut";
  await db`create table if not exists cut_effects (job_id bigint not null)`;
  const runs = new Map<string, number>();
  const worker = q.work(queue, async (job, ctx) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
    await ctx.sql`insert into cut_effects (job_id) values (${job.id})`;
    await new Promise((r) => setTimeout(r, 4_000));
  }, { concurrency: 4 });
  // A second client whose maintenance looks for lost workers too.
  const other = await connect({ databaseUrl: url });
  const otherWorker = other.work("cut-other", async () => {});
  await Promise.all([worker.ready, otherWorker.ready]);
  const ids = await q.enqueueMany(queue, [1, 2, 3, 4]);
  await waitFor(() => runs.size === 4, { what: "all four jobs running" });
  for (let cut = 0; cut < 3; cut++) {
    const killed = await db`
      select pg_terminate_backend(l.pid) from pg_locks l
      where l.locktype = 'advisory' and l.classid = 1885827361 and l.objsubid = 2
        and l.objid::bigint = (select lock_key from pgq.workers where name = ${worker.name})`;
    assert.equal(killed.length, 1, "the worker's marker connection was found and cut");
    await new Promise((r) => setTimeout(r, 800));
  }
  await waitFor(async () => (await db`select count(*)::int as n from pgq.jobs where queue = ${queue}`)[0]!.n === 0, { timeoutMs: 20_000, what: "the jobs to finish" });
  await otherWorker.stop();
  await other.close();
  await worker.stop();
  const effects = await db`select job_id, count(*)::int as n from cut_effects group by job_id`;
  t.diagnostic(`runs per job: ${[...runs.values()].join(", ")}`);
  assert.deepEqual([...runs.values()], [1, 1, 1, 1], "no job started twice");
  assert.deepEqual(effects.map((e) => e.n), [1, 1, 1, 1]);
  assert.equal(effects.length, ids.length);
});

test("a hung process whose session lives on is rescued by lease expiry only", async (t) => {
  const queue = "hung";
  const bystander = q.work("hung-bystander", async () => {});
  await bystander.ready;
  const child = await startWorker(queue, "lease", () => undefined);
  // Lease mode's default lease is 30 s: a 40 s hang outlives it. Checked without waiting that long:
  const { id } = await q.enqueue(queue, { busyMs: 40_000 });
  await waitFor(async () => (await db`select from pgq.jobs where id = ${id} and locked_until is not null`).length === 1, { what: "the job to start" });
  // Shorten the lease as if 29 s had passed, so that it lapses in about 1 s.
  const [claimed] = await db`update pgq.jobs set locked_until = now() + interval '1 second' where id = ${id} returning locked_until`;
  const rescued = await waitFor(async () => (await db`select errors from pgq.jobs where id = ${id} and jsonb_array_length(errors) > 0`)[0], {
    timeoutMs: 15_000,
    what: "the rescue of the hung job",
  });
  child.kill("SIGKILL");
  await exited(child);
  await bystander.stop();
  const at = new Date((rescued.errors as { at: string }[])[0]!.at);
  t.diagnostic(`rescued ${at.getTime() - (claimed!.locked_until as Date).getTime()} ms after its lease lapsed`);
  assert.ok(at >= (claimed!.locked_until as Date), "not before its lease lapsed");
  assert.match((rescued.errors as { error: string }[])[0]!.error, /lease lapsed/);
});

test("a PostgreSQL restart rescues nothing a live worker is still working on", async (t) => {
  const server = await ownServer();
  const rq = await connect({ databaseUrl: server.databaseUrl });
  const done = new Map<string, number>();
  const worker = rq.work("restart", async (job) => {
    await new Promise((r) => setTimeout(r, 6_000));
    done.set(job.id, (done.get(job.id) ?? 0) + 1);
  }, { mode: "lease", concurrency: 4 });
  await worker.ready;
  const ids = await rq.enqueueMany("restart", [1, 2, 3, 4]);
  const sdb = postgres(server.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await waitFor(async () => (await sdb`select count(*)::int as n from pgq.jobs where locked_until is not null`)[0]!.n === 4, { what: "all four running" });
    await server.restart("fast");
    await waitFor(() => done.size === 4, { timeoutMs: 30_000, what: "the jobs to finish" });
    await waitFor(async () => (await sdb`select count(*)::int as n from pgq.jobs`)[0]!.n === 0, { what: "the completions" });
    t.diagnostic(`runs per job: ${ids.map((i) => done.get(i)).join(", ")}`);
    assert.deepEqual(ids.map((i) => done.get(i)), [1, 1, 1, 1], "each job ran once, on its first attempt");
  } finally {
    await sdb.end();
    await worker.stop();
    await rq.close();
  }
});
