import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { connect, ValidationError } from "../src/index.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();

async function count(queue: string): Promise<number> {
  const [row] = await db`select count(*)::int as n from pgq.jobs where queue = ${queue}`;
  return row!.n;
}

test("enqueue returns the new job's id and stores payload and options", async () => {
  const runAt = new Date(Date.now() + 3_600_000);
  const { id } = await q.enqueue("store", { to: "ada@example.com", n: [1, 2.5, null, true] }, {
    priority: -3,
    runAt,
    maxAttempts: 4,
    backoff: { baseMs: 10, maxMs: 500 },
  });
  const [job] = await db`select * from pgq.jobs where id = ${id}`;
  assert.deepEqual(job!.payload, { to: "ada@example.com", n: [1, 2.5, null, true] });
  assert.equal(job!.priority, -3);
  assert.equal(job!.max_attempts, 4);
  assert.equal(job!.backoff_base_ms, 10);
  assert.equal(job!.backoff_max_ms, 500);
  assert.equal((job!.run_at as Date).getTime(), runAt.getTime());
});

test("delayMs is counted from the database's clock", async () => {
  const { id } = await q.enqueue("delayed", {}, { delayMs: 60_000 });
  const [row] = await db`select extract(epoch from run_at - now()) as secs from pgq.jobs where id = ${id}`;
  assert.ok(Number(row!.secs) > 59 && Number(row!.secs) <= 60, `run_at is ${row!.secs}s away`);
});

test("enqueueMany inserts a large batch in one statement, ids in payload order", async () => {
  const payloads = Array.from({ length: 5000 }, (_, i) => ({ i }));
  const ids = await q.enqueueMany("batch", payloads);
  assert.equal(ids.length, 5000);
  const rows = await db`select id, payload from pgq.jobs where queue = 'batch' order by id`;
  assert.deepEqual(rows.map((r) => r.id), ids);
  assert.deepEqual(rows.map((r) => r.payload.i), payloads.map((p) => p.i));
  assert.deepEqual(await q.enqueueMany("batch", []), []);
});

test("enqueue in a transaction that rolls back leaves no job and sends no wake-up", async () => {
  const listener = postgres(url, { max: 1, onnotice: () => {} });
  const heard: string[] = [];
  // A ready job's notification is its queue, then a line saying where it lands (migration 000012).
  await listener.listen("pgq_jobs", (payload) => heard.push(payload.split("\n")[0]!));
  try {
    await assert.rejects(
      q.sql.begin(async (tx) => {
        await q.enqueue("rolled-back", { n: 1 }, { tx });
        await q.enqueueMany("rolled-back", [{ n: 2 }, { n: 3 }], { tx });
        throw new Error("the caller changes its mind");
      }),
      /changes its mind/,
    );
    assert.equal(await count("rolled-back"), 0);
    await q.sql.begin((tx) => q.enqueue("committed", {}, { tx }));
    assert.equal(await count("committed"), 1);
    // Notifications arrive in commit order: once "committed" is heard, a rolled-back one would have been too.
    await waitFor(() => heard.includes("committed"), { what: "the committed job's notification" });
    assert.deepEqual(heard, ["committed"]);
  } finally {
    await listener.end();
  }
});

test("the SQL function enqueues with defaults, options and dedupe keys", async () => {
  const [a] = await db`select pgq.enqueue('from-sql', '{"via":"psql"}') as id`;
  const [b] = await db`select pgq.enqueue('from-sql', '{"n":2}', priority => 5, max_attempts => 2, dedupe_key => 'k') as id`;
  const [c] = await db`select pgq.enqueue('from-sql', '{"n":3}', dedupe_key => 'k') as id`;
  assert.equal(c!.id, b!.id);
  const rows = await db`select id, payload, priority, max_attempts from pgq.jobs where queue = 'from-sql' order by id`;
  assert.deepEqual(rows.map((r) => [r.id, r.payload, r.priority, r.max_attempts]), [
    [a!.id, { via: "psql" }, 0, 25],
    [b!.id, { n: 2 }, 5, 2],
  ]);
  await assert.rejects(db`select pgq.enqueue('from-sql', ${"\"" + "x".repeat(1_100_000) + "\""}::jsonb)`, /limit is 1048576/);
  await assert.rejects(db`select pgq.enqueue('', '{}')`, /queue name must be 1 to 128 characters/);
});

test("a dedupe key admits one live job per queue; a duplicate returns the live job's id", async () => {
  const first = await q.enqueue("dedupe", { n: 1 }, { dedupeKey: "order-7" });
  const again = await q.enqueue("dedupe", { n: 2 }, { dedupeKey: "order-7" });
  const elsewhere = await q.enqueue("dedupe-2", { n: 3 }, { dedupeKey: "order-7" });
  assert.equal(again.id, first.id);
  assert.notEqual(elsewhere.id, first.id);
  const [row] = await db`select payload from pgq.jobs where id = ${first.id}`;
  assert.deepEqual(row!.payload, { n: 1 });
});

test("bad queue names and payloads get typed errors and write nothing", async () => {
  const cases: [string, () => Promise<unknown>, string][] = [
    ["empty name", () => q.enqueue("", {}), "INVALID_QUEUE_NAME"],
    ["long name", () => q.enqueue("x".repeat(129), {}), "INVALID_QUEUE_NAME"],
    ["control character", () => q.enqueue("a\nb", {}), "INVALID_QUEUE_NAME"],
    ["lone surrogate in name", () => q.enqueue("a\ud800", {}), "INVALID_QUEUE_NAME"],
    ["not a string", () => q.enqueue(42 as unknown as string, {}), "INVALID_QUEUE_NAME"],
    ["\\u0000", () => q.enqueue("bad", { s: "a\u0000b" }), "INVALID_PAYLOAD"],
    ["\\u0000 in a key", () => q.enqueue("bad", { ["k\u0000"]: 1 }), "INVALID_PAYLOAD"],
    ["lone surrogate", () => q.enqueue("bad", { s: "\udc00" }), "INVALID_PAYLOAD"],
    ["undefined", () => q.enqueue("bad", undefined), "INVALID_PAYLOAD"],
    ["function", () => q.enqueue("bad", () => 1), "INVALID_PAYLOAD"],
    ["bigint", () => q.enqueue("bad", { n: 1n }), "INVALID_PAYLOAD"],
    ["NaN", () => q.enqueue("bad", { n: NaN }), "INVALID_PAYLOAD"],
    ["cycle", () => { const a: Record<string, unknown> = {}; a.a = a; return q.enqueue("bad", a); }, "INVALID_PAYLOAD"],
    ["too deep", () => q.enqueue("bad", JSON.parse("[".repeat(1001) + "]".repeat(1001))), "INVALID_PAYLOAD"],
    ["too large", () => q.enqueue("bad", "x".repeat(1024 * 1024)), "PAYLOAD_TOO_LARGE"],
    ["one bad payload in a batch", () => q.enqueueMany("bad", [{ ok: 1 }, { s: "\u0000" }]), "INVALID_PAYLOAD"],
    ["negative maxAttempts", () => q.enqueue("bad", {}, { maxAttempts: 0 }), "INVALID_OPTION"],
    ["fractional priority", () => q.enqueue("bad", {}, { priority: 1.5 }), "INVALID_OPTION"],
    ["runAt and delayMs", () => q.enqueue("bad", {}, { runAt: new Date(), delayMs: 5 }), "INVALID_OPTION"],
    ["invalid date", () => q.enqueue("bad", {}, { runAt: new Date("nope") }), "INVALID_OPTION"],
  ];
  for (const [what, call, code] of cases) {
    await assert.rejects(call(), (e: unknown) => e instanceof ValidationError && e.code === code, what);
  }
  const [row] = await db`select count(*)::int as n from pgq.jobs where queue in ('bad', '')`;
  assert.equal(row!.n, 0);
});

test("what is valid round-trips exactly: unicode names and payloads, at the size limit", async () => {
  const queue = `émoji 🚀 'quoted'; "semi"`;
  const payload = { s: "ünïcødé 🚀 \\u0000 as text", big: 2 ** 60, nested: JSON.parse("[".repeat(999) + "]".repeat(999)) };
  const { id } = await q.enqueue(queue, payload);
  const [row] = await db`select queue, payload from pgq.jobs where id = ${id}`;
  assert.equal(row!.queue, queue);
  assert.deepEqual(row!.payload, payload);
  const limit = 1024 * 1024;
  const atLimit = "x".repeat(limit - 2); // the two quotes make it exactly the limit
  const big = await q.enqueue("limit", atLimit);
  const [stored] = await db`select octet_length(payload::text) as n from pgq.jobs where id = ${big.id}`;
  assert.equal(stored!.n, limit);
});

test("maxPayloadBytes changes the limit", async () => {
  const small = await connect({ databaseUrl: url, maxPayloadBytes: 100 });
  try {
    await assert.rejects(small.enqueue("small", "x".repeat(100)), { code: "PAYLOAD_TOO_LARGE" });
  } finally {
    await small.close();
  }
});
