import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { runCli } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const { url } = await freshDatabase();
const db = postgres(url, { max: 2, onnotice: () => {} });
const q = await connect({ databaseUrl: url });
await db`create table cli_marks (job_id bigint, queue text, attempt int)`;
test.after(async () => {
  await q.close();
  await db.end();
});

const fixture = (name: string) => `test/fixtures/${name}`;

async function marks(queue: string): Promise<number> {
  const [row] = await db`select count(*)::int as n from cli_marks where queue = ${queue}`;
  return row!.n;
}

test("work runs jobs from a default-export handler; SIGTERM during a slow job lets it finish, exit 0", async () => {
  await q.enqueueMany("slow", [{ mark: true }, { mark: true }]);
  const { id: slowId } = await q.enqueue("slow", { sleepMs: 1500, mark: true });
  const worker = pgqWork("slow", { handler: fixture("cli-handler.mjs"), concurrency: 2, databaseUrl: url });
  await waitFor(async () => (await db`select from pgq.jobs where id = ${slowId} and locked_until is not null`).length === 1, {
    what: "the slow job to be running",
  });
  const r = await worker.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await marks("slow"), 3, "the slow job finished after SIGTERM");
  assert.equal((await db`select from pgq.jobs where queue = 'slow'`).length, 0);
  // Off a terminal, the worker logs pino JSON to stderr.
  const records = r.stderr.trim().split("\n").map((line) => JSON.parse(line) as { msg: string });
  assert.ok(records.some((l) => l.msg === "worker started"));
  assert.ok(records.some((l) => l.msg === "worker stopped"));
});

test("a second signal releases the job in flight without spending an attempt, and exits at once", async () => {
  const { id } = await q.enqueue("stuck", { sleepMs: 60_000 });
  const worker = pgqWork("stuck", { handler: fixture("cli-handler.mjs"), databaseUrl: url });
  await waitFor(async () => (await db`select from pgq.jobs where id = ${id} and locked_until is not null`).length === 1, {
    what: "the job to be running",
  });
  let stderr = "";
  worker.child.stderr!.on("data", (d: string) => (stderr += d));
  worker.child.kill("SIGINT");
  await waitFor(() => stderr.includes("stopping: finishing the jobs in flight"), { what: "the first stage of the stop" });
  const r = await worker.stop("SIGINT");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms < 10_000);
  const [job] = await db`select attempts, locked_until from pgq.jobs where id = ${id}`;
  assert.deepEqual(job, { attempts: 0, locked_until: null });
});

test("a default export mapping queues to handlers, and a failing job that dies", async () => {
  await q.enqueue("alpha", {});
  await q.enqueue("beta", {});
  const worker = pgqWork(["alpha", "beta"], { handler: fixture("cli-handler-map.mjs"), mode: "lease", leaseMs: 5000, databaseUrl: url });
  await waitFor(async () => (await marks("alpha")) === 1 && (await marks("beta")) === 1, { what: "both queues' jobs" });
  assert.equal((await worker.stop()).code, 0);
});

test("a TypeScript handler module loads when pgq runs through tsx", async () => {
  await q.enqueue("ts", { mark: true });
  const worker = pgqWork("ts", { handler: fixture("cli-handler.ts"), databaseUrl: url, node: ["--import", "tsx"] });
  // tsx compiles the CLI's whole module graph first: seconds on a loaded machine.
  await waitFor(async () => (await marks("ts")) === 1, { what: "the job", timeoutMs: 60_000 });
  assert.equal((await worker.stop()).code, 0);
});

const badHandlers: [string, string[], RegExp][] = [
  ["a missing module", ["work", "w", "--handler", "test/fixtures/cli-nope.mjs"], /cannot load handler module test\/fixtures\/cli-nope.mjs: no such file/],
  ["a module that does not parse", ["work", "w", "--handler", fixture("cli-syntax-error.mjs")], /cannot load handler module .*SyntaxError/],
  ["no default export", ["work", "w", "--handler", fixture("cli-no-default.mjs")], /has no usable default export/],
  ["a default export that is not a handler", ["work", "w", "--handler", fixture("cli-bad-default.mjs")], /has no usable default export/],
  ["a map without the queue", ["work", "gamma", "--handler", fixture("cli-handler-map.mjs")], /no handler function for queue "gamma"/],
  ["TypeScript without tsx", ["work", "w", "--handler", fixture("cli-handler.ts")], /TypeScript needs tsx/],
  ["no --handler", ["work", "w"], /required option '--handler <module>' not specified/],
  ["a negative concurrency", ["work", "w", "--handler", fixture("cli-handler.mjs"), "--concurrency", "-2"], /--concurrency.*invalid/],
  ["an unknown mode", ["work", "w", "--handler", fixture("cli-handler.mjs"), "--mode", "fast"], /--mode.*invalid.*transaction, lease/],
  ["a lease too short for the core", ["work", "w", "--handler", fixture("cli-handler.mjs"), "--lease-ms", "5"], /leaseMs must be an integer from 100/],
  ["a queue name the core rejects", ["work", "bad\tname", "--handler", fixture("cli-handler.mjs")], /not printable/],
];

for (const [what, args, message] of badHandlers) {
  test(`work refuses ${what}: exit 2, one line`, async () => {
    await q.enqueue("w", { mark: true });
    const r = await runCli(args, { databaseUrl: url });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^pgq: [^\n]+\n$/);
    assert.equal(await marks("w"), 0, "no job ran");
  });
}

test("the worker exits 1 when the database is unreachable", async () => {
  const r = await runCli(["work", "w", "--handler", fixture("cli-handler.mjs")], { databaseUrl: "postgres://pgq@127.0.0.1:9/pgq" });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^pgq: cannot reach PostgreSQL at 127\.0\.0\.1:9/);
});
