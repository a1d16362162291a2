// pgq.enqueue, the SQL function (migrations 000006, 000009, 000013): every option of the library,
// named or positional, the old seven-argument form, and the library's checks.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PendingQuery, Row } from "postgres";
import { tables } from "../src/db/tables.js";
import { ValidationError, type EnqueueOptions } from "../src/index.js";
import { expireJobs } from "../src/sql/expire.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();

async function job(id: string) {
  const [row] = await db`
    select queue, payload, priority, round(extract(epoch from run_at - now()))::integer as due_in_s, max_attempts,
           backoff_base_ms, backoff_max_ms, timeout_ms, dedupe_key, group_key
    from pgq.jobs where id = ${id}`;
  return row!;
}

async function enqueued(query: PendingQuery<Row[]>): Promise<string> {
  const [row] = await query;
  return row!.id as string;
}

test("named arguments set every option", async () => {
  const id = await enqueued(db`
    select pgq.enqueue('emails', '{"to":"ada@example.com"}', priority => -1, run_at => now() + interval '1 minute',
      max_attempts => 5, backoff_base_ms => 1000, backoff_max_ms => 60000, timeout_ms => 30000,
      dedupe_key => 'k', group_key => 'g') as id`);
  assert.deepEqual(await job(id), {
    queue: "emails", payload: { to: "ada@example.com" }, priority: -1, due_in_s: 60, max_attempts: 5,
    backoff_base_ms: 1000, backoff_max_ms: 60000, timeout_ms: 30000, dedupe_key: "k", group_key: "g",
  });
  const delayed = await enqueued(db`select pgq.enqueue('emails', '{}', delay_ms => 90000) as id`);
  assert.equal((await job(delayed)).due_in_s, 90);
});

test("every argument by position, the new ones after the old seven", async () => {
  const id = await enqueued(db`
    select pgq.enqueue('positional', '{"n":1}', 7, null, 3, 'dk', 'gk', 250, 4000, 15000, 120000) as id`);
  assert.deepEqual(await job(id), {
    queue: "positional", payload: { n: 1 }, priority: 7, due_in_s: 120, max_attempts: 3,
    backoff_base_ms: 250, backoff_max_ms: 4000, timeout_ms: 15000, dedupe_key: "dk", group_key: "gk",
  });
});

test("the old seven-argument positional form still works, typed as its callers wrote it", async () => {
  const id = await enqueued(db`
    select pgq.enqueue(${"old-form"}::text, ${'{"n":2}'}::text::jsonb, ${-5}::integer,
                       now() + interval '1 hour', ${4}::integer, ${"k7"}::text, ${"g7"}::text) as id`);
  assert.deepEqual(await job(id), {
    queue: "old-form", payload: { n: 2 }, priority: -5, due_in_s: 3600, max_attempts: 4,
    backoff_base_ms: 1000, backoff_max_ms: 3600000, timeout_ms: null, dedupe_key: "k7", group_key: "g7",
  });
  const literal = await enqueued(db.unsafe(`select pgq.enqueue('old-form', '{}', 0, now(), 25, null, null) as id`));
  assert.equal((await job(literal)).due_in_s, 0);
});

test("expiry: expires_at, or ttl_ms from when the job is due, named or by position, as the library sets it", async () => {
  const expiresIn = async (id: string) =>
    (await db`select round(extract(epoch from expires_at - now()))::integer as s from pgq.jobs where id = ${id}`)[0]!.s as number | null;
  const at = await enqueued(db`select pgq.enqueue('sql-expiry', '{}', expires_at => now() + interval '10 minutes') as id`);
  assert.equal(await expiresIn(at), 600);
  const { id: atFromLibrary } = await q.enqueue("sql-expiry", {}, { expiresAt: new Date(Date.now() + 600_000) });
  assert.equal(await expiresIn(atFromLibrary), 600);
  // ttl_ms counts from run_at, which delay_ms puts an hour ahead.
  const ttl = await enqueued(db`select pgq.enqueue('sql-expiry', '{}', delay_ms => 3600000, ttl_ms => 60000) as id`);
  const { id: ttlFromLibrary } = await q.enqueue("sql-expiry", {}, { delayMs: 3_600_000, ttlMs: 60_000 });
  assert.equal(await expiresIn(ttl), 3660);
  assert.equal(await expiresIn(ttlFromLibrary), 3660);
  const positional = await enqueued(db`
    select pgq.enqueue('sql-expiry', '{}', 0, null, 25, null, null, null, null, null, null, null, null, 120000) as id`);
  assert.equal(await expiresIn(positional), 120);
  const none = await enqueued(db`select pgq.enqueue('sql-expiry', '{}', priority => 1) as id`);
  assert.equal(await expiresIn(none), null);
  // Past its expiry before it ran: never handed out, finished as expired.
  const past = await enqueued(db`select pgq.enqueue('sql-expired', '{}', expires_at => now() - interval '1 second') as id`);
  await expireJobs(db, tables(db, "pgq"));
  assert.equal((await q.getJob(past))?.state, "expired");
});

test("null means the default, for every option", async () => {
  const id = await enqueued(db`
    select pgq.enqueue('nulls', null, null, null, null, null, null, null, null, null, null, null, null, null) as id`);
  const { id: fromLibrary } = await q.enqueue("nulls", null);
  assert.deepEqual(await job(id), await job(fromLibrary));
});

test("a dedupe key gives the live job's id, whichever form enqueued it", async () => {
  const { id } = await q.enqueue("sql-dedupe", { n: 1 }, { dedupeKey: "order-9" });
  const again = await enqueued(db`select pgq.enqueue('sql-dedupe', '{"n":2}', dedupe_key => 'order-9', priority => 3) as id`);
  assert.equal(again, id);
  assert.deepEqual((await job(id)).payload, { n: 1 });
});

test("each bad argument is refused with 22023 and a message that says what to do, as the library refuses it; nothing is written", async () => {
  const cases: [string, PendingQuery<Row[]>, RegExp, EnqueueOptions][] = [
    ["run_at and delay_ms", db`select pgq.enqueue('bad', '{}', run_at => now(), delay_ms => 5)`, /give run_at or delay_ms, not both/,
      { runAt: new Date(), delayMs: 5 }],
    ["infinite run_at", db`select pgq.enqueue('bad', '{}', run_at => 'infinity')`, /run_at must be a finite time/,
      { runAt: new Date(Infinity) }],
    ["negative delay_ms", db`select pgq.enqueue('bad', '{}', delay_ms => -1)`, /delay_ms must be from 0 to 3153600000000/, { delayMs: -1 }],
    ["delay_ms over a hundred years", db`select pgq.enqueue('bad', '{}', delay_ms => 3153600000001)`, /delay_ms must be from 0/,
      { delayMs: 3153600000001 }],
    ["max_attempts 0", db`select pgq.enqueue('bad', '{}', max_attempts => 0)`, /max_attempts must be 1 or more \(got 0\)/, { maxAttempts: 0 }],
    ["negative backoff_base_ms", db`select pgq.enqueue('bad', '{}', backoff_base_ms => -1)`, /backoff_base_ms must be 0 or more/,
      { backoff: { baseMs: -1 } }],
    ["backoff_max_ms below backoff_base_ms", db`select pgq.enqueue('bad', '{}', backoff_base_ms => 500, backoff_max_ms => 499)`,
      /backoff_max_ms must be at least backoff_base_ms \(500\), got 499/, { backoff: { baseMs: 500, maxMs: 499 } }],
    ["timeout_ms 0", db`select pgq.enqueue('bad', '{}', timeout_ms => 0)`, /timeout_ms must be 1 or more, or null/, { timeoutMs: 0 }],
    ["an empty dedupe_key", db`select pgq.enqueue('bad', '{}', dedupe_key => '')`, /dedupe_key must be 1 to 512 characters long/,
      { dedupeKey: "" }],
    ["a dedupe_key of 513 characters", db`select pgq.enqueue('bad', '{}', dedupe_key => ${"k".repeat(513)})`, /dedupe_key must be 1 to 512/,
      { dedupeKey: "k".repeat(513) }],
    ["an empty group_key", db`select pgq.enqueue('bad', '{}', group_key => '')`, /group_key must be 1 to 512 characters long/,
      { groupKey: "" }],
    ["expires_at and ttl_ms", db`select pgq.enqueue('bad', '{}', expires_at => now(), ttl_ms => 5)`, /give expires_at or ttl_ms, not both/,
      { expiresAt: new Date(), ttlMs: 5 }],
    ["infinite expires_at", db`select pgq.enqueue('bad', '{}', expires_at => 'infinity')`, /expires_at must be a finite time/,
      { expiresAt: new Date(Infinity) }],
    ["ttl_ms 0", db`select pgq.enqueue('bad', '{}', ttl_ms => 0)`, /ttl_ms must be from 1 to 3153600000000/, { ttlMs: 0 }],
    ["ttl_ms over a hundred years", db`select pgq.enqueue('bad', '{}', ttl_ms => 3153600000001)`, /ttl_ms must be from 1/,
      { ttlMs: 3153600000001 }],
  ];
  for (const [what, query, message, options] of cases) {
    await assert.rejects(query, (e: { code?: string; message: string }) => e.code === "22023" && message.test(e.message), what);
    await assert.rejects(q.enqueue("bad", {}, options), (e) => e instanceof ValidationError && e.code === "INVALID_OPTION", `library: ${what}`);
  }
  const [row] = await db`select count(*)::int as n from pgq.jobs where queue = 'bad'`;
  assert.equal(row!.n, 0);
});

test("a long backoff_base_ms alone raises the default backoff_max_ms to it, as in the library", async () => {
  const id = await enqueued(db`select pgq.enqueue('long-backoff', '{}', backoff_base_ms => 7200000) as id`);
  const { id: fromLibrary } = await q.enqueue("long-backoff", {}, { backoff: { baseMs: 7_200_000 } });
  assert.equal((await job(id)).backoff_max_ms, 7_200_000);
  assert.deepEqual(await job(id), await job(fromLibrary));
});
