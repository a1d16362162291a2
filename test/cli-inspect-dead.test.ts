import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { tables } from "../src/db/tables.js";
import { connect } from "../src/index.js";
import { expireJobs } from "../src/sql/expire.js";
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

/** Dead jobs as the worker leaves them, without waiting for real attempts to fail. */
async function bury(queue: string, n: number, diedAgo = "0 seconds"): Promise<string[]> {
  const ids = await q.enqueueMany(queue, Array.from({ length: n }, (_, i) => ({ i })), { maxAttempts: 2 });
  await db`
    with gone as (delete from pgq.jobs where id = any(${ids}::bigint[]) returning *)
    insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
                               timeout_ms, dedupe_key, group_key, last_error, errors, created_at, died_at)
    select id, queue, payload, priority, 2, max_attempts, backoff_base_ms, backoff_max_ms, timeout_ms, dedupe_key, group_key,
           'Error: the printer is on fire', '[{"attempt":1,"error":"jammed"},{"attempt":2,"error":"Error: the printer is on fire"}]',
           created_at, now() - ${diedAgo}::interval
    from gone`;
  return ids;
}

test("inspect --json counts every state per queue", async () => {
  await q.enqueueMany("inspect-a", [{}, {}, {}]);
  await q.enqueue("inspect-a", {}, { delayMs: 3_600_000 });
  // A retrying job (failed once, waiting) and a running one (leased).
  const [retrying, running] = await q.enqueueMany("inspect-a", [{}, {}]);
  await db`update pgq.jobs set attempts = 1, run_at = now() + interval '1 minute' where id = ${retrying!}`;
  await db`update pgq.jobs set attempts = 1, locked_until = now() + interval '1 minute', lease_token = gen_random_uuid() where id = ${running!}`;
  await db`update pgq.jobs set run_at = now() - interval '5 minutes' where queue = 'inspect-a' and run_at <= now()`;
  await bury("inspect-a", 2);
  await bury("inspect-b", 1, "2 hours");
  const r = await pgq("inspect", "--json");
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { queues: Record<string, unknown>[] };
  const a = out.queues.find((s) => s.queue === "inspect-a")!;
  assert.deepEqual({ ...a, oldestReadyAgeMs: undefined }, {
    queue: "inspect-a", ready: 3, scheduled: 1, running: 1, retrying: 1, dead: 2, oldestReadyAgeMs: undefined,
    diedLastMinute: 2, completedLastMinute: 0, failedLastMinute: 0, completedLastHour: 0, failedLastHour: 0, estimated: [], paused: false,
    limits: { concurrency: null, keyConcurrency: null, rateLimit: null, keyRateLimit: null },
  });
  assert.ok((a.oldestReadyAgeMs as number) >= 299_000 && (a.oldestReadyAgeMs as number) < 400_000);
  assert.deepEqual(out.queues.find((s) => s.queue === "inspect-b")!.diedLastMinute, 0);

  await q.setQueue("inspect-a", { concurrency: 5, rateLimit: { count: 50, perMs: 1000 } });
  const table = await pgq("inspect", "--queue", "inspect-a");
  assert.match(table.stdout, /^QUEUE\s+READY\s+SCHEDULED\s+RUNNING\s+RETRYING\s+DEAD\s+OLDEST READY\s+DIED \(1 MIN\)\s+COMPLETED \(1 MIN \/ 1 H\)\s+FAILED \(1 MIN \/ 1 H\)\s+LIMITS\n/);
  assert.match(table.stdout, /\ninspect-a\s+3\s+1\s+1\s+1\s+2\s+5m[0-5]\ds\s+2\s+0 \/ 0\s+0 \/ 0\s+5 running, 50\/1s\n/);
});

test("inspect estimates the counts past its bound on a large queue, and says which", async () => {
  await db`insert into pgq.jobs (queue, payload) select 'inspect-big', '{}' from generate_series(1, 30000)`;
  await db`analyze pgq.jobs`;
  const { inspectQueues } = await import("../src/admin/inspect.js");
  const result = await inspectQueues(db, "pgq", { queue: "inspect-big", exactUpTo: 1000 });
  const big = result.queues[0]!;
  assert.deepEqual(big.estimated, ["ready"]);
  assert.ok(big.ready > 20_000 && big.ready < 40_000, `estimate ${big.ready}`);
  assert.equal(big.scheduled, 0);
  await db`delete from pgq.jobs where queue = 'inspect-big'`;
});

test("dead list shows each dead job's attempts and error; --json has payloads and history", async () => {
  const ids = await bury("dead-list", 3);
  const r = await pgq("dead", "list", "--queue", "dead-list");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\s*ID\s+QUEUE\s+ATTEMPTS\s+DIED\s+LAST ERROR\n/);
  for (const id of ids) assert.match(r.stdout, new RegExp(`\\n\\s*${id}\\s+dead-list\\s+2/2\\s+\\S+ ago\\s+Error: the printer is on fire`));
  const json = JSON.parse((await pgq("dead", "list", "--queue", "dead-list", "--json", "--limit", "2")).stdout) as Record<string, unknown>[];
  assert.equal(json.length, 2);
  assert.deepEqual(json[0]!.payload, { i: 2 });
  assert.equal((json[0]!.errors as unknown[]).length, 2);
});

test("dead list says which jobs expired before they ran (a queue without history); --json has the reason", async () => {
  await q.setQueue("dead-expired", { retentionMs: 0 });
  const { id } = await q.enqueue("dead-expired", {}, { expiresAt: new Date(Date.now() - 1000) });
  const [failed] = await bury("dead-expired", 1);
  await expireJobs(db, tables(db, "pgq"));
  const r = await pgq("dead", "list", "--queue", "dead-expired");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`\\n\\s*${id}\\s+dead-expired\\s+0/25\\s+\\S+ ago\\s+expired: not started before its expiry\\n`));
  assert.match(r.stdout, new RegExp(`\\n\\s*${failed}\\s+dead-expired\\s+2/2\\s+\\S+ ago\\s+Error: the printer is on fire`));
  const json = JSON.parse((await pgq("dead", "list", "--queue", "dead-expired", "--json")).stdout) as { id: string; reason: string }[];
  assert.deepEqual(json.map((j) => [j.id, j.reason]).sort(), [[id, "expired"], [failed!, "failed"]].sort());
});

test("dead retry moves jobs back with fresh attempts, keeping ids and error history", async () => {
  const ids = await bury("dead-retry", 3);
  const one = await pgq("dead", "retry", "--id", ids[0]!);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, new RegExp(`^moved 1 dead job back to the queue: ${ids[0]}\\n$`));
  const rest = await pgq("dead", "retry", "--queue", "dead-retry");
  assert.match(rest.stdout, /^moved 2 dead jobs back/);
  const jobs = await db`select id, attempts, locked_until, run_at <= now() as ready, jsonb_array_length(errors) as history
                        from pgq.jobs where queue = 'dead-retry' order by id`;
  assert.deepEqual(jobs.map((j) => ({ ...j })), ids.map((id) => ({ id, attempts: 0, locked_until: null, ready: true, history: 2 })));
  assert.equal((await db`select from pgq.dead_jobs where queue = 'dead-retry'`).length, 0);
  const missing = await pgq("dead", "retry", "--id", "999999");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not retried .*999999/);
});

test("dead purge deletes by queue, id or age, and asks for --yes to delete everything", async () => {
  const byId = await bury("dead-purge", 2);
  await bury("dead-purge-old", 2, "3 days");
  await bury("dead-purge-new", 1);
  const count = async () => (await db`select count(*)::int as n from pgq.dead_jobs`)[0]!.n as number;

  const before = await count();
  const all = await pgq("dead", "purge");
  assert.equal(all.code, 2);
  assert.match(all.stderr, /^pgq: this would delete every dead job: add --yes/);
  assert.equal(await count(), before);

  assert.equal((await pgq("dead", "purge", "--id", byId[0]!)).stdout, "deleted 1 dead job\n");
  assert.equal((await pgq("dead", "purge", "--older-than", "2d")).stdout, "deleted 2 dead jobs\n");
  assert.equal((await pgq("dead", "purge", "--queue", "dead-purge")).stdout, "deleted 1 dead job\n");
  const bad = await pgq("dead", "purge", "--older-than", "7");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--older-than.*duration/);
  const badId = await pgq("dead", "retry", "--id", "12; drop table pgq.jobs");
  assert.equal(badId.code, 2);
  assert.equal((await pgq("dead", "purge", "--yes")).code, 0);
  assert.equal(await count(), 0);
});

test("migrate --print writes SQL that leaves the schema as pgq migrate would", async () => {
  const bare = await freshDatabase({ migrated: false });
  const printed = await runCli(["migrate", "--print"]);
  assert.equal(printed.code, 0, printed.stderr);
  const target = postgres(bare.url, { max: 1, onnotice: () => {} });
  try {
    await target.unsafe(printed.stdout);
  } finally {
    await target.end();
  }
  const again = await runCli(["migrate"], { databaseUrl: bare.url });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `schema "pgq" is up to date\n`);

  const fresh = await freshDatabase({ migrated: false });
  const applied = await runCli(["migrate"], { databaseUrl: fresh.url });
  assert.match(applied.stdout, /^applied 000001-/);
});
