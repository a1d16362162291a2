// The database repeats the library's job defaults and limits (src/job-defaults.ts,
// src/validate.ts) in pgq.jobs' column defaults and in pgq.enqueue: these tests read them back
// from a migrated database, so that a migration or a constant that drifts fails here.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "../src/job-defaults.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, MAX_DELAY_MS, MAX_KEY_LENGTH, MAX_QUEUE_NAME_LENGTH } from "../src/validate.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();

test("pgq.jobs' column defaults are the library's", async () => {
  const rows = await db`
    select column_name, column_default from information_schema.columns
    where table_schema = 'pgq' and table_name = 'jobs'
      and column_name in ('priority', 'max_attempts', 'backoff_base_ms', 'backoff_max_ms')`;
  assert.deepEqual(Object.fromEntries(rows.map((r) => [r.column_name, r.column_default])), {
    priority: String(DEFAULT_PRIORITY),
    max_attempts: String(DEFAULT_MAX_ATTEMPTS),
    backoff_base_ms: String(DEFAULT_BACKOFF.baseMs),
    backoff_max_ms: String(DEFAULT_BACKOFF.maxMs),
  });
});

test("pgq.enqueue's argument defaults are the library's", async () => {
  const [row] = await db`select pg_get_function_arguments('pgq.enqueue'::regproc) as args`;
  const defaults = Object.fromEntries(
    (row!.args as string).split(", ").map((arg) => {
      const [, name, value] = /^(\w+) .*?(?: DEFAULT (.*))?$/.exec(arg)!;
      return [name, value];
    }),
  );
  assert.deepEqual(defaults, {
    queue: undefined,
    payload: "'null'::jsonb",
    priority: String(DEFAULT_PRIORITY),
    // null: now, or delay_ms from now
    run_at: "NULL::timestamp with time zone",
    max_attempts: String(DEFAULT_MAX_ATTEMPTS),
    dedupe_key: "NULL::text",
    group_key: "NULL::text",
    backoff_base_ms: String(DEFAULT_BACKOFF.baseMs),
    // null: DEFAULT_BACKOFF.maxMs, or backoff_base_ms if that is longer; what it gives is checked below
    backoff_max_ms: "NULL::integer",
    timeout_ms: "NULL::integer",
    delay_ms: "NULL::bigint",
    trace_context: "NULL::text",
    // null: no expiry, as the library's expiresAt and ttlMs left out
    expires_at: "NULL::timestamp with time zone",
    ttl_ms: "NULL::bigint",
  });
  // The body repeats them for explicit nulls.
  const [enqueued] = await db`select pgq.enqueue('defaults', null, null, null, null, null, null, null, null, null, null) as id`;
  const [job] = await db`select priority, max_attempts, backoff_base_ms, backoff_max_ms from pgq.jobs where id = ${enqueued!.id}`;
  assert.deepEqual(job, {
    priority: DEFAULT_PRIORITY,
    max_attempts: DEFAULT_MAX_ATTEMPTS,
    backoff_base_ms: DEFAULT_BACKOFF.baseMs,
    backoff_max_ms: DEFAULT_BACKOFF.maxMs,
  });
});

test("pgq.enqueue's limits are the library's", async () => {
  const accepts = (what: string, args: string, params: unknown[]) =>
    assert.doesNotReject(db.unsafe(`select pgq.enqueue(${args})`, params as never[]), what);
  const refuses = (what: string, args: string, params: unknown[]) =>
    assert.rejects(db.unsafe(`select pgq.enqueue(${args})`, params as never[]), (e: { code?: string }) => ["22023", "54000"].includes(e.code!), what);
  await accepts("the longest queue name", "$1", ["q".repeat(MAX_QUEUE_NAME_LENGTH)]);
  await refuses("a longer queue name", "$1", ["q".repeat(MAX_QUEUE_NAME_LENGTH + 1)]);
  await accepts("the longest dedupe key", "'limits', dedupe_key => $1", ["k".repeat(MAX_KEY_LENGTH)]);
  await refuses("a longer dedupe key", "'limits', dedupe_key => $1", ["k".repeat(MAX_KEY_LENGTH + 1)]);
  await accepts("the longest group key", "'limits', group_key => $1", ["g".repeat(MAX_KEY_LENGTH)]);
  await refuses("a longer group key", "'limits', group_key => $1", ["g".repeat(MAX_KEY_LENGTH + 1)]);
  await accepts("the longest delay", "'limits', delay_ms => $1::bigint", [MAX_DELAY_MS]);
  await refuses("a longer delay", "'limits', delay_ms => $1::bigint", [MAX_DELAY_MS + 1]);
  await accepts("the longest ttl", "'limits', ttl_ms => $1::bigint", [MAX_DELAY_MS]);
  await refuses("a longer ttl", "'limits', ttl_ms => $1::bigint", [MAX_DELAY_MS + 1]);
  // A JSON string's two quotes count.
  await accepts("the largest payload", "'limits', $1::text::jsonb", [JSON.stringify("x".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 2))]);
  await refuses("a larger payload", "'limits', $1::text::jsonb", [JSON.stringify("x".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 1))]);
  // And the library draws the same lines.
  await q.enqueue("q".repeat(MAX_QUEUE_NAME_LENGTH), {}, { dedupeKey: "k".repeat(MAX_KEY_LENGTH), delayMs: MAX_DELAY_MS });
  await assert.rejects(q.enqueue("q".repeat(MAX_QUEUE_NAME_LENGTH + 1), {}), { code: "INVALID_QUEUE_NAME" });
  await assert.rejects(q.enqueue("limits", {}, { groupKey: "g".repeat(MAX_KEY_LENGTH + 1) }), { code: "INVALID_OPTION" });
  await assert.rejects(q.enqueue("limits", {}, { delayMs: MAX_DELAY_MS + 1 }), { code: "INVALID_OPTION" });
  await q.enqueue("limits", {}, { ttlMs: MAX_DELAY_MS });
  await assert.rejects(q.enqueue("limits", {}, { ttlMs: MAX_DELAY_MS + 1 }), { code: "INVALID_OPTION" });
});
