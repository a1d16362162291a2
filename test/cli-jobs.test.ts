import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { runCli } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";

const { url } = await freshDatabase();
const db = postgres(url, { max: 2, onnotice: () => {} });
const q = await connect({ databaseUrl: url });
test.after(async () => {
  await q.close();
  await db.end();
});
const pgq = (...args: string[]) => runCli(args, { databaseUrl: url });

test("pgq job, pgq history and pgq cancel show and steer jobs", async () => {
  const { id: done } = await q.enqueue("cli-jobs", { n: 1 });
  const worker = q.work("cli-jobs", () => ({ ok: true }), { mode: "lease" });
  assert.deepEqual(await q.waitFor(done, { timeoutMs: 20_000 }), { ok: true });
  await worker.stop();
  const job = await pgq("job", done);
  assert.equal(job.code, 0, job.stderr);
  assert.match(job.stdout, /state\s+completed/);
  assert.match(job.stdout, /result\s+\{"ok":true\}/);
  const { id: waiting } = await q.enqueue("cli-jobs", { n: 2 }, { delayMs: 3_600_000 });
  const waitingJob = await pgq("job", waiting, "--json");
  assert.equal(JSON.parse(waitingJob.stdout).state, "scheduled");
  const cancel = await pgq("cancel", waiting);
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.match(cancel.stdout, new RegExp(`cancelled ${waiting}`));
  const history = await pgq("history", "--queue", "cli-jobs", "--since", "10m");
  assert.equal(history.code, 0, history.stderr);
  assert.match(history.stdout, /completed/);
  assert.match(history.stdout, /cancelled/);
  const cancelledOnly = await pgq("history", "--state", "cancelled", "--json");
  assert.deepEqual(JSON.parse(cancelledOnly.stdout).map((j: { id: string }) => j.id), [waiting]);
  await q.enqueueMany("cli-bulk", [{}, {}, {}]);
  const bulk = await pgq("cancel", "--queue", "cli-bulk");
  assert.match(bulk.stdout, /cancelled 3 jobs of cli-bulk/);
  const missing = await pgq("job", "999999");
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr.trim().split("\n").length, 1);
});

test("every new command's bad input: one line on stderr, exit 2, nothing written", async () => {
  const footprint = async () => (await db`select (select count(*) from pgq.jobs)::int as jobs, (select count(*) from pgq.history)::int as history`)[0];
  const before = await footprint();
  for (const args of [
    ["job"], ["job", "abc"], ["job", "0"], ["history", "--state", "done"], ["history", "--since", "soon"],
    ["history", "--limit", "0"], ["history", "--queue", ""], ["cancel"], ["cancel", "x1"], ["cancel", "1", "--queue", "q"],
    ["cancel", "--queue", " padded "], ["job", "1", "2"], ["job", "1", "--bogus"], ["history", "--since", "-1h"],
    ["history", "--limit", "10001"], ["history", "extra"], ["cancel", "--queue", ""],
  ]) {
    const r = await pgq(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^pgq: /);
    assert.equal(r.stdout, "");
  }
  assert.deepEqual(await footprint(), before);
});
