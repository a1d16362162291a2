// Many worker processes on a server with few connections: 20 `pgq work` processes fit in
// max_connections = 100 and drain a queue together, within the README's formula; and a process
// the server cannot take exits 1 with one line that says what it wanted and what to change.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pino } from "pino";
import postgres, { type Sql } from "postgres";
import { connect } from "../src/index.js";
import { runCli } from "./helpers/cli.js";
import { ownServer } from "./helpers/own-server.js";
import { drained } from "./helpers/queue.js";
import { nextEvent, waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const PROCESSES = 20;
const CONCURRENCY = 4;
const JOBS = 4000;
const HANDLER = "test/fixtures/ok-handler.mjs";
/** README "Connections", `pgq work --mode lease`: pgq's two, LISTEN and the marker (q.sql's closed once it started). */
const PER_LEASE_PROCESS = 4;

const server = await ownServer({ max_connections: 100 });
const url = server.databaseUrl;
const db = postgres(url, { max: 1, onnotice: () => {} });
after(() => db.end());

const clientBackends = async (sql: Sql) =>
  (await sql<[{ n: number }]>`select count(*)::int as n from pg_stat_activity where backend_type = 'client backend'`)[0].n;

test(`${PROCESSES} pgq work processes (lease, concurrency ${CONCURRENCY}) start under max_connections = 100 and drain one queue together`, async (t) => {
  const started = performance.now();
  const workers = Array.from({ length: PROCESSES }, () => pgqWork("crowd", { handler: HANDLER, mode: "lease", concurrency: CONCURRENCY, databaseUrl: url }));
  await waitFor(async () => (await db`select from pgq.workers`).length === PROCESSES, {
    timeoutMs: 120_000,
    what: `all ${PROCESSES} workers to register`,
  });
  t.diagnostic(`${PROCESSES} processes registered after ${Math.round(performance.now() - started)} ms`);

  let peak = 0;
  const sampler = setInterval(() => void clientBackends(db).then((n) => (peak = Math.max(peak, n)), () => undefined), 50);
  const enqueued = performance.now();
  await db`select pgq.enqueue('crowd', '{}') from generate_series(1, ${JOBS})`;
  await drained(db, "crowd", 120_000);
  clearInterval(sampler);
  peak = Math.max(peak, await clientBackends(db));
  t.diagnostic(`${JOBS} jobs drained in ${Math.round(performance.now() - enqueued)} ms; peak ${peak} client connections`);

  const perWorker = await db<{ worker: string; n: number }[]>`
    select worker, count(*)::int as n from pgq.history where queue = 'crowd' and state = 'completed' group by worker`;
  assert.equal(perWorker.reduce((sum, w) => sum + w.n, 0), JOBS, "every job completed once");
  t.diagnostic(`jobs per process: ${perWorker.map((w) => w.n).sort((a, b) => a - b).join(", ")}`);
  assert.equal(perWorker.length, PROCESSES, "every process ran jobs");
  // The test's own connection and its sampler's, besides the workers'.
  assert.ok(peak <= PROCESSES * PER_LEASE_PROCESS + 1, `${peak} connections at most, the formula allows ${PROCESSES * PER_LEASE_PROCESS}`);

  const results = await Promise.all(workers.map((w) => w.stop()));
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /too many|refused/i);
  }
});

test("a process the server cannot take exits 1 with one line: the server, the connections it wanted, what to change", async (t) => {
  await waitFor(async () => (await clientBackends(db)) === 1, { what: "the workers' connections to close" });
  // Fill every slot (the test's user is a superuser: the reserved ones too).
  const hogs: Sql[] = [];
  for (;;) {
    const hog = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await hog`select 1`;
      hogs.push(hog);
    } catch (error) {
      await hog.end({ timeout: 0 });
      assert.equal((error as { code?: string }).code, "53300", String(error));
      break;
    }
  }
  const line = /^pgq: PostgreSQL at \S+ refused a connection \(sorry, too many clients already\): pgq wants (\d+) in this process for its 1 worker \(2 pgq \+ 1 LISTEN \+ 1 marker(?: \+ 2 transaction-mode slots)?\), .*raise max_connections/;

  // No slot at all: refused at the first connection.
  const none = await runCli(["work", "crowd", "--handler", HANDLER, "--mode", "lease"], { databaseUrl: url, timeoutMs: 30_000 });
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr.trim().split("\n").at(-1)!, line);
  assert.doesNotMatch(none.stderr, /^\s+at /m, "no stack trace");
  assert.equal(line.exec(none.stderr.trim().split("\n").at(-1)!)![1], "4");

  // One slot: the process connects, then its worker's connections are refused, and it exits rather than retrying forever.
  await hogs.pop()!.end();
  await waitFor(async () => (await clientBackends(db)) === hogs.length + 1, { what: "the freed slot" });
  const one = await runCli(["work", "crowd", "--handler", HANDLER, "--mode", "transaction", "--concurrency", "2"], { databaseUrl: url, timeoutMs: 30_000 });
  assert.equal(one.code, 1, one.stderr);
  const last = one.stderr.trim().split("\n").at(-1)!;
  assert.match(last, line);
  assert.equal(line.exec(last)![1], "6", "2 pgq + 1 LISTEN + 1 marker + 2 slots");
  assert.doesNotMatch(one.stderr, /^\s+at /m, "no stack trace");
  await Promise.all(hogs.map((h) => h.end({ timeout: 0 })));
  t.diagnostic(last);
  t.diagnostic(`refused at start: exited 1 after ${Math.round(none.ms)} ms (no slot) and ${Math.round(one.ms)} ms (one slot)`);
});

test("a running worker whose connections are refused keeps retrying, says so once, and runs jobs once it has them", async (t) => {
  // A role of its own, so that its CONNECTION LIMIT (superusers have none) refuses it alone.
  await db`create role crowd_worker login in role postgres`;
  const workerUrl = Object.assign(new URL(url), { username: "crowd_worker" }).toString();
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  const q = await connect({ databaseUrl: workerUrl, logger });
  after(() => q.close());
  const worker = q.work("refused", () => undefined, { mode: "lease", pollIntervalMs: 200 });
  await worker.ready;

  await db`alter role crowd_worker connection limit 0`;
  await db`select pg_terminate_backend(pid) from pg_stat_activity where usename = 'crowd_worker'`;
  await db`select pgq.enqueue('refused', '{}')`;
  const refusals = () => lines.filter((l) => l.level === 50 && /refused a connection/.test(l.msg));
  const failedClaims = () => lines.filter((l) => /claiming jobs failed/.test(l.msg)).length;
  await waitFor(() => failedClaims() >= 3, { timeoutMs: 30_000, what: "claims to fail and be retried" });
  assert.equal(refusals().length, 1, "the line is logged once, not at every retry");
  assert.match(refusals()[0]!.msg, /^PostgreSQL at \S+ refused a connection \(too many connections for role "crowd_worker"\): pgq wants 4 .*\(2 pgq \+ 1 LISTEN \+ 1 marker\).*max_connections/);
  t.diagnostic(refusals()[0]!.msg);

  const completed = nextEvent(worker, "completed", 30_000);
  await db`alter role crowd_worker connection limit -1`;
  await completed;
  await worker.stop();
});
