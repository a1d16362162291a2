// The database turns read-only under load, as after a failover to a replica: existing sessions
// are cut and new ones may not write. Workers back off instead of spinning, spend no attempt
// but the claims that ran a job, kill no job and give none a backoff for it, and recover when
// the database reverts, whether or not the sessions opened while it was read-only are cut again.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pino } from "pino";
import postgres from "postgres";
import { isReadOnlyError } from "../src/db/outage.js";
import { connect, type Job } from "../src/index.js";
import { freshDatabase, serverUrl } from "./helpers/db.js";
import { effectsTable } from "./helpers/effects.js";
import { drained } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const CONCURRENCY = 4;
const READ_ONLY_MS = 6_000;
const CLAIM_FAILED = "claiming jobs failed; retrying";

interface LogLine {
  time: number;
  msg: string;
  retryInMs?: number;
}

// A lease shorter than the read-only time lapses, and the rescue counts the attempt; a longer
// one lets the worker record the failure itself once the database reverts.
const cases = [
  { mode: "transaction", cutOnRevert: false, leaseMs: 2_000 },
  { mode: "lease", cutOnRevert: true, leaseMs: 10_000 },
] as const;

for (const { mode, cutOnRevert, leaseMs } of cases) {
  test(`${mode} mode: read-only for ${READ_ONLY_MS / 1000} s, then reverted ${cutOnRevert ? "and sessions cut again" : "without cutting sessions"}`, async () => {
    const { url, name } = await freshDatabase();
    const db = postgres(url, { max: 2, onnotice: () => {} });
    // ALTER DATABASE is refused on a read-only session: the switch is made from another database.
    const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
    const effects = await effectsTable(db);
    const lines: LogLine[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    const q = await connect({ databaseUrl: url, logger });
    after(async () => {
      await q.close();
      await Promise.all([db.end(), admin.end()]);
    });

    const ids = await q.enqueueMany("work", Array.from({ length: 200 }, () => ({})));
    const started = new Map<string, number>();
    const backedOff: string[] = [];
    let recordedReadOnly = 0;
    const worker = q.work("work", async (job: Job, ctx) => {
      await effects.record(job, ctx);
      await new Promise((r) => setTimeout(r, 50));
    }, { mode, concurrency: CONCURRENCY, leaseMs });
    worker.on("started", (job) => started.set(job.id, (started.get(job.id) ?? 0) + 1));
    worker.on("failed", (job, error, outcome) => {
      if (outcome !== "unrecorded" && isReadOnlyError(error)) {
        recordedReadOnly++;
        void db`select run_at > now() as later from pgq.jobs where id = ${job.id}`.then(([row]) => row?.later && backedOff.push(job.id));
      }
    });
    await worker.ready;
    await waitFor(async () => (await effects.tally()).size >= 40, { what: "jobs before the switch" });

    const cutSessions = () => admin`
      select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and application_name = 'pgq'`;
    await admin.unsafe(`alter database ${name} set default_transaction_read_only = on`);
    await cutSessions();
    const readOnlyAt = Date.now();
    await new Promise((r) => setTimeout(r, READ_ONLY_MS));
    await admin.unsafe(`alter database ${name} reset default_transaction_read_only`);
    if (cutOnRevert) await cutSessions();
    const revertedAt = Date.now();

    await drained(db, undefined, 60_000);
    const recoveredInMs = Date.now() - revertedAt;
    await worker.stop();

    // No spinning: claims while read-only follow the worker's exponential backoff (100 ms
    // doubling to 10 s: 7 tries in 6 s), plus at most one per job that ended and per LISTEN
    // reconnection. A worker retrying at a fixed 100 ms would try 60 times.
    const failedClaims = lines.filter((l) => l.msg === CLAIM_FAILED && l.time >= readOnlyAt && l.time <= revertedAt);
    assert.ok(failedClaims.length >= 3, `the worker kept trying (${failedClaims.length} claims)`);
    assert.ok(failedClaims.length <= 20, `${failedClaims.length} claims in ${READ_ONLY_MS} ms read-only`);
    assert.ok(Math.max(...failedClaims.map((l) => l.retryInMs ?? 0)) >= 1600, "the waits between claims grew");

    const { lost, duplicated } = await effects.outcome(ids);
    assert.deepEqual(lost, [], "no job was lost");
    if (mode === "transaction") assert.deepEqual(duplicated, [], "no job's effect exists twice");
    // Lease mode is at least once: only jobs cut off between their effect and their completion ran twice.
    else assert.ok(duplicated.length <= 2 * CONCURRENCY, `${duplicated.length} jobs ran twice`);
    // Every attempt a job spent is a claim that ran it: the read-only time burnt none.
    const tally = [...(await effects.tally())];
    assert.deepEqual(tally.filter(([id, t]) => t.lastAttempt !== started.get(id)), [], "attempts match the runs");
    assert.deepEqual(backedOff, [], "no job waits a backoff for the database being read-only");
    assert.equal((await db`select count(*)::int as n from pgq.dead_jobs`)[0]!.n, 0, "no job died");
    const rerun = tally.filter(([, t]) => t.lastAttempt > 1).length;
    console.log(`# ${mode}: ${failedClaims.length} claims while read-only; ${rerun} jobs ran again, ${recordedReadOnly} `
      + `recorded failing on the read-only database; drained ${recoveredInMs} ms after the revert`);
  });
}
