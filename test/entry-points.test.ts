// What every public entry point checks before it does anything: an options argument that is not
// an object, a closed client, a database whose pgq schema was never migrated. And every error
// class a caller or a handler can meet is exported.
import assert from "node:assert/strict";
import { test } from "node:test";
import { schemaNotMigratedError } from "../src/db/schema-errors.js";
import * as errors from "../src/errors.js";
import * as pgq from "../src/index.js";
import { connect, type Queue } from "../src/index.js";
import { freshDatabase } from "./helpers/db.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();

/** Each public method, called with arguments that would work. */
const calls: Record<string, (q: Queue) => unknown> = {
  migrate: (q) => q.migrate(),
  enqueue: (q) => q.enqueue("entry", {}),
  enqueueMany: (q) => q.enqueueMany("entry", [{}]),
  work: (q) => q.work("entry", () => undefined),
  stats: (q) => q.stats(),
  inspect: (q) => q.inspect(),
  "deadJobs.list": (q) => q.deadJobs.list(),
  "deadJobs.retry": (q) => q.deadJobs.retry({ queue: "entry" }),
  "deadJobs.purge": (q) => q.deadJobs.purge({ queue: "entry" }),
  schedule: (q) => q.schedule("entry", "0 3 * * *", "entry"),
  unschedule: (q) => q.unschedule("entry"),
  schedules: (q) => q.schedules(),
  subscribe: (q) => q.subscribe("entry", "entry.*"),
  unsubscribe: (q) => q.unsubscribe("entry", "entry.*"),
  subscriptions: (q) => q.subscriptions(),
  publish: (q) => q.publish("entry.created", {}),
  setQueue: (q) => q.setQueue("entry", { concurrency: 2 }),
  pause: (q) => q.pause("entry"),
  resume: (q) => q.resume("entry"),
  queues: (q) => q.queues(),
  workers: (q) => q.workers(),
  getJob: (q) => q.getJob("1"),
  history: (q) => q.history(),
  waitFor: (q) => q.waitFor("1", { timeoutMs: 1 }),
  enqueueAndWait: (q) => q.enqueueAndWait("entry", {}, { timeoutMs: 1 }),
  cancel: (q) => q.cancel("1"),
  cancelQueue: (q) => q.cancelQueue("entry"),
};

/** Each entry point that takes options, called with `options` in their place. */
const withOptions: Record<string, (options: unknown) => unknown> = {
  "connect()": (options) => connect(options as pgq.ConnectOptions),
  "q.enqueue()": (options) => q.enqueue("entry", {}, options as pgq.EnqueueOptions),
  "q.enqueueMany()": (options) => q.enqueueMany("entry", [{}], options as pgq.EnqueueOptions),
  "q.work()": (options) => q.work("entry", () => undefined, options as pgq.WorkOptions),
  "q.schedule()": (options) => q.schedule("entry", "0 3 * * *", "entry", null, options as pgq.ScheduleOptions),
  "q.publish()": (options) => q.publish("entry.created", {}, options as pgq.PublishOptions),
  "q.inspect()": (options) => q.inspect(options as pgq.InspectOptions),
  "q.deadJobs.list()": (options) => q.deadJobs.list(options as pgq.ListDeadJobsOptions),
  "q.deadJobs.retry()": (options) => q.deadJobs.retry(options as pgq.DeadJobFilter),
  "q.deadJobs.purge()": (options) => q.deadJobs.purge(options as pgq.PurgeDeadJobsOptions),
  "q.history()": (options) => q.history(options as pgq.HistoryOptions),
  "q.waitFor()": (options) => q.waitFor("1", options as pgq.WaitOptions),
  "q.enqueueAndWait()": (options) => q.enqueueAndWait("entry", {}, options as pgq.EnqueueAndWaitOptions),
};

/** Runs a call that may throw at once (work) or reject, and gives back what it failed with. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  assert.fail("it succeeded");
}

test("every public method is covered below", () => {
  const own = (o: object) => Object.entries(Object.getOwnPropertyDescriptors(o)).filter(([, d]) => typeof d.value === "function").map(([name]) => name);
  const methods = [...own(Object.getPrototypeOf(q)), ...own(q.deadJobs).map((name) => `deadJobs.${name}`)]
    .filter((name) => name !== "constructor" && name !== "close");
  assert.deepEqual(methods.sort(), Object.keys(calls).sort());
});

test("an options argument that is not an object is refused, naming the entry point and what it takes, before any SQL", async () => {
  const footprint = async () => (await db`
    select (select count(*) from pgq.jobs)::int as jobs, (select count(*) from pgq.dead_jobs)::int as dead,
           (select count(*) from pgq.schedules)::int as schedules, (select count(*) from pgq.subscriptions)::int as subscriptions`)[0];
  const before = await footprint();
  for (const [entryPoint, call] of Object.entries(withOptions)) {
    for (const [bad, kind] of [["postgres://app:secret@db/app", "a string"], [5, "a number"], [[], "an array"], [null, "null"], [true, "a boolean"]] as const) {
      const error = await failure(() => call(bad));
      assert.ok(error instanceof pgq.ValidationError, `${entryPoint} with ${kind}: ${String(error)}`);
      assert.equal(error.code, "INVALID_OPTION");
      assert.ok(error.message.startsWith(`${entryPoint} takes its options as an object, as in `), error.message);
      assert.ok(error.message.endsWith(`(got ${kind})`), error.message);
      assert.doesNotMatch(error.message, /secret/, "a URL given as options is not echoed");
    }
  }
  assert.deepEqual(await footprint(), before, "nothing was written");
});

test("a closed client refuses every method with CLIENT_CLOSED, and opens no connection", async () => {
  const { url: closedUrl, name } = await freshDatabase();
  const closed = await connect({ databaseUrl: closedUrl });
  await closed.close();
  const sessions = async () => (await db`select count(*)::int as n from pg_stat_activity where datname = ${name}`)[0]!.n;
  await waitFor(async () => (await sessions()) === 0, { what: "the closed pool's sessions to end" });
  for (const [method, call] of Object.entries(calls)) {
    const error = await failure(() => call(closed));
    assert.ok(error instanceof pgq.ClientClosedError, `${method}: ${String(error)}`);
    assert.equal(error.code, "CLIENT_CLOSED");
    assert.match(error.message, new RegExp(`^q\\.${method.replace(".", "\\.")}\\(\\) was called after q\\.close\\(\\)`));
  }
  assert.equal(await sessions(), 0, "no pool was opened");
  await closed.close(); // a second close is harmless
});

test("work() on a closed client throws at once: it is synchronous", async () => {
  const closed = await connect({ databaseUrl: url });
  await closed.close();
  assert.throws(() => closed.work("entry", () => undefined), { code: "CLIENT_CLOSED" });
});

test("on a database without pgq's schema, the methods that reach it fail with SCHEMA_NOT_MIGRATED and what to run", async () => {
  const bare = await freshDatabase({ migrated: false });
  for (const schema of ["pgq", "jobs_elsewhere"]) {
    const unmigrated = await connect({ databaseUrl: bare.url, schema });
    try {
      for (const [method, call] of Object.entries(calls)) {
        if (method === "migrate" || method === "work") continue;
        const error = await failure(() => call(unmigrated));
        assert.ok(error instanceof pgq.PgqError, `${method}: ${String(error)}`);
        assert.equal(error.code, "SCHEMA_NOT_MIGRATED", `${method}: ${error.message}`);
        assert.match(error.message, new RegExp(`^pgq's schema "${schema}" is missing from this database or out of date: run \`pgq migrate\` or q\\.migrate\\(\\) \\(`));
        assert.ok((error.cause as { code?: string }).code, "PostgreSQL's error is the cause");
      }
    } finally {
      await unmigrated.close();
    }
  }
});

test("a missing table that is not pgq's is left as PostgreSQL reported it", async () => {
  const error = await failure(() => db`select from orders`);
  assert.equal((error as { code?: string }).code, "42P01");
  assert.equal(schemaNotMigratedError(error, "pgq"), undefined);
  // Nor a table of a schema whose name merely ends like pgq's.
  const other = await failure(() => db`select from mypgq.jobs`);
  assert.equal(schemaNotMigratedError(other, "pgq"), undefined);
});

test("every error class pgq throws is exported", () => {
  const classes = Object.values(errors).filter((value) => typeof value === "function" && value.prototype instanceof errors.PgqError);
  assert.ok(classes.length >= 6);
  for (const cls of classes) assert.equal((pgq as Record<string, unknown>)[cls.name], cls, `${cls.name} is exported`);
  assert.equal(typeof pgq.ConnectionLostError, "function", "ConnectionLostError, which a handler's ctx.sql rejects with, is exported");
  assert.ok(new pgq.ConnectionLostError() instanceof pgq.PgqError);
});
