// Maintenance runs in one process per schema (issue 17): real `pgq work` processes on one
// database, exactly one of which holds the lead; SIGKILLed, another takes the lead and rescues
// its jobs, which the survivors start again at once (the rescue announces them).
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { test } from "node:test";
import { tables } from "../src/db/tables.js";
import { RESTART_GRACE } from "../src/sql/fail.js";
import { rescueLapsedLeases } from "../src/sql/rescue.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork, type WorkerProcess } from "./helpers/workers.js";

const { q, db, url } = await testQueue();
const QUEUE = "leader";
/** Long, so that only a poll or a notification could start a rescued job again: the notification it must be. */
const POLL_MS = 60_000;

/** The OS pids of the processes whose marker session holds the lead of maintenance for schema pgq (or, with `lock`, the deputy's place). */
async function leaders(lock = "pgq maintenance"): Promise<number[]> {
  const rows = await db`
    select w.pid
    from pg_locks lead
    join pg_locks marker on marker.pid = lead.pid and marker.locktype = 'advisory' and marker.classid = 1885827361 and marker.objsubid = 2 and marker.granted
    join pgq.workers w on w.lock_key = marker.objid::bigint
    where lead.locktype = 'advisory' and lead.granted and lead.objsubid = 2
      and lead.classid = hashtext(${lock})::oid and lead.objid = hashtext('pgq')::oid
      and lead.database = (select oid from pg_database where datname = current_database())
    group by w.pid`;
  return rows.map((r) => r.pid as number);
}

const deputies = () => leaders("pgq maintenance deputy");

function start(): WorkerProcess {
  return pgqWork(QUEUE, { handler: "test/fixtures/cli-handler.mjs", mode: "lease", concurrency: 4, pollIntervalMs: POLL_MS, databaseUrl: url });
}

async function registered(n: number): Promise<void> {
  await waitFor(async () => (await db`select count(*)::int as n from pgq.workers`)[0]!.n === n, { what: `${n} registered workers` });
}

/** One leader at each of several looks: none may take the lead beside it. */
async function soleLeader(): Promise<number> {
  const [first] = await waitFor(async () => {
    const l = await leaders();
    return l.length === 1 && l;
  }, { what: "a leader" });
  for (let look = 0; look < 5; look++) {
    // Longer than the deputy's one try a second to take the lead.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await leaders(), [first], "one process leads, the same one");
  }
  return first!;
}

test("one of three pgq work processes runs maintenance; SIGKILLed, another takes the lead and rescues its jobs", async (t) => {
  // The first process leads (the others start once it does) and takes two long jobs.
  const first = start();
  await registered(1);
  assert.deepEqual(await waitFor(async () => (await leaders()).length === 1 && leaders(), { what: "the first process to lead" }), [first.child.pid]);
  const ids = await q.enqueueMany(QUEUE, [{ sleepMs: 10 * 60_000 }, { sleepMs: 10 * 60_000 }], { maxAttempts: 3 });
  await waitFor(async () => (await db`select count(*)::int as n from pgq.jobs where locked_until is not null`)[0]!.n === 2, { what: "both jobs running" });
  const others = [start(), start()];
  await registered(3);
  assert.equal(await soleLeader(), first.child.pid, "the first process still leads, alone");
  const [deputy] = await waitFor(async () => (await deputies()).length === 1 && deputies(), { what: "a deputy" });
  assert.ok(others.some((o) => o.child.pid === deputy), "one of the others is the leader's deputy");

  // Rescuers take a server started in the last 10 s for a restart, and rescue nothing but lapsed leases.
  await waitFor(async () => (await db`select pg_postmaster_start_time() < now() - ${RESTART_GRACE}::interval as old`)[0]!.old, {
    timeoutMs: 15_000,
    what: "the server's restart grace to pass",
  });
  const killedAt = performance.now();
  first.child.kill("SIGKILL");
  let tookLeadMs = 0;
  const successor = await waitFor(async () => {
    const l = await leaders();
    if (l.length === 1 && l[0] !== first.child.pid) return (tookLeadMs = performance.now() - killedAt), l[0];
    return undefined;
  }, { what: "another process to take the lead" });
  await waitFor(async () => (await db`select count(*)::int as n from pgq.jobs where jsonb_array_length(errors) > 0`)[0]!.n === 2, { timeoutMs: 20_000, what: "both jobs rescued" });
  const rescuedMs = performance.now() - killedAt;
  const restarted = await waitFor(async () => {
    const rows = await db`
      select j.id, w.pid from pgq.jobs j join pgq.workers w on w.name = j.locked_by
      where j.id = any(${ids}::bigint[]) and j.attempts = 2 and j.locked_until is not null`;
    return rows.length === 2 && rows;
  }, { timeoutMs: 20_000, what: "both jobs started again on the survivors" });
  const restartedMs = performance.now() - killedAt;
  assert.ok(others.some((o) => o.child.pid === successor), "a survivor leads");
  for (const r of restarted) assert.ok(others.some((o) => o.child.pid === r.pid), "each job runs again on a survivor");
  const [job] = await db`select errors from pgq.jobs where id = ${ids[0]!}`;
  assert.match((job!.errors as { error: string }[])[0]!.error, /WORKER_LOST/);
  assert.equal(await soleLeader(), successor, "one of the two survivors leads, alone");
  // The deputy gave its place up if it took the lead: the other survivor takes it at its next try, within 10 s.
  const [nextDeputy] = await waitFor(async () => (await deputies()).length === 1 && deputies(), { timeoutMs: 30_000, what: "a deputy among the survivors" });
  assert.ok(others.some((o) => o.child.pid === nextDeputy) && nextDeputy !== successor, "the survivor that does not lead is the deputy");
  t.diagnostic(`after the leader's SIGKILL: a survivor led ${Math.round(tookLeadMs)} ms later, rescued both its jobs after ${Math.round(rescuedMs)} ms; they ran again after ${Math.round(restartedMs)} ms (${restarted.filter((r) => r.pid === successor).length} on the new leader, polls ${POLL_MS} ms apart)`);

  // The jobs sleep on: no graceful stop would end.
  await db`delete from pgq.jobs`;
  const results = await Promise.all([first.exited, ...others.map((o) => o.stop("SIGKILL"))]);
  const said = results.map((r) => r.stderr.split("\n").filter((l) => l.includes("leads maintenance")).length);
  assert.deepEqual(said.slice(0, 1), [1], "the first process said once that it leads");
  assert.equal(said.slice(1).reduce((a, b) => a + b, 0), 1, "and one survivor, once");
});

test("a rescue tells every process's workers, one `queue\\nrewind` per queue of jobs to run again", async () => {
  const heard: string[] = [];
  // The enqueues' own notifications may come in late: only rewinds are the rescue's.
  const listening = await db.listen("pgq_jobs", (payload) => payload.endsWith("\nrewind") && heard.push(payload));
  const ids = [...(await q.enqueueMany("rescued-a", [1, 2])), ...(await q.enqueueMany("rescued-b", [3]))];
  await db`
    update pgq.jobs set attempts = 1, locked_by = 'gone', lease_token = gen_random_uuid(), locked_until = now() - interval '1 second'
    where id = any(${ids}::bigint[])`;
  const { outcomes: rescued } = await rescueLapsedLeases(db, tables(db, "pgq"));
  await waitFor(() => heard.length >= 2, { what: "the rescue's notifications" });
  await listening.unlisten();
  assert.equal(rescued.length, 3);
  assert.deepEqual(heard.sort(), ["rescued-a\nrewind", "rescued-b\nrewind"]);
});
