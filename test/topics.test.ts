import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import { pino } from "pino";
import { connect, ValidationError } from "../src/index.js";
import { testQueue } from "./helpers/queue.js";

const { q, db, url } = await testQueue();

beforeEach(async () => {
  await db`delete from pgq.jobs`;
  await db`delete from pgq.subscriptions`;
});

async function queuesOf(ids: string[]): Promise<string[]> {
  const rows = await db`select queue from pgq.jobs where id = any(${ids}::bigint[]) order by queue`;
  return rows.map((r) => r.queue);
}

test("RabbitMQ topic semantics: '*' is exactly one word, '#' zero or more", async () => {
  const patterns: [string, string][] = [
    ["exact", "orders.created"],
    ["one-word", "orders.*"],
    ["any-tail", "orders.#"],
    ["any-head", "#.eu"],
    ["middle", "orders.#.eu"],
    ["star-middle", "orders.*.eu"],
    ["everything", "#"],
    ["special", "a+b.(c)"],
  ];
  for (const [queue, pattern] of patterns) await q.subscribe(queue, pattern);
  const cases: [string, string[]][] = [
    ["orders", ["any-tail", "everything"]],
    ["orders.created", ["any-tail", "everything", "exact", "one-word"]],
    ["orders.created.eu", ["any-head", "any-tail", "everything", "middle", "star-middle"]],
    ["orders.eu", ["any-head", "any-tail", "everything", "middle", "one-word"]],
    ["orders.a.b.eu", ["any-head", "any-tail", "everything", "middle"]],
    ["eu", ["any-head", "everything"]],
    ["ordersXcreated", ["everything"]],
    ["a+b.(c)", ["everything", "special"]],
    ["aab.(c)", ["everything"]],
  ];
  for (const [topic, expected] of cases) {
    const ids = await q.publish(topic, { topic });
    assert.deepEqual(await queuesOf(ids), expected, topic);
  }
  for (const [queue, pattern] of patterns) assert.equal(await q.unsubscribe(queue, pattern), true);
});

test("a queue with several matching patterns gets one job; subscribing twice changes nothing", async () => {
  await q.subscribe("audit", "user.#");
  await q.subscribe("audit", "user.*");
  await q.subscribe("audit", "user.*");
  assert.deepEqual((await q.subscriptions()).map((s) => [s.queue, s.pattern]), [["audit", "user.#"], ["audit", "user.*"]]);
  const ids = await q.publish("user.created", { id: 7 }, { priority: 3 });
  assert.equal(ids.length, 1);
  const [job] = await db`select payload, priority from pgq.jobs where id = ${ids[0]!}`;
  assert.deepEqual(job, { payload: { id: 7 }, priority: 3 });
  assert.equal(await q.unsubscribe("audit", "user.#"), true);
  assert.equal(await q.unsubscribe("audit", "user.#"), false);
});

test("publish is one statement, atomic, and commits or rolls back with the caller's transaction", async () => {
  await q.subscribe("tx-a", "invoice.*");
  await q.subscribe("tx-b", "invoice.paid");
  await assert.rejects(
    q.sql.begin(async (tx) => {
      assert.equal((await q.publish("invoice.paid", { n: 1 }, { tx })).length, 2);
      throw new Error("the caller rolls back");
    }),
    /rolls back/,
  );
  assert.deepEqual(await queuesOf((await db`select id from pgq.jobs`).map((r) => r.id)), []);
  const ids = await q.sql.begin((tx) => q.publish("invoice.paid", { n: 2 }, { tx }));
  assert.deepEqual(await queuesOf(ids), ["tx-a", "tx-b"]);
  // One round trip: one statement reaches the server (postgres.js calls `debug` per query).
  const statements: string[] = [];
  const counted = await connect({ databaseUrl: url });
  counted.sql.options.debug = (_connection: number, query: string) => void statements.push(query);
  await counted.publish("invoice.paid", { n: 3 });
  await counted.close();
  assert.equal(statements.length, 1, statements.join("\n---\n"));
});

test("a dedupe key gives each subscribed queue at most one live job", async () => {
  await q.subscribe("dd-a", "stock.*");
  await q.subscribe("dd-b", "stock.#");
  const first = await q.publish("stock.low", { n: 1 }, { dedupeKey: "sku-1" });
  const again = await q.publish("stock.low", { n: 2 }, { dedupeKey: "sku-1" });
  assert.deepEqual(again, first);
  const rows = await db`select payload from pgq.jobs where queue like 'dd-%'`;
  assert.deepEqual(rows.map((r) => r.payload), [{ n: 1 }, { n: 1 }]);
});

test("a publish that matches nothing returns no ids and logs it at debug level", async () => {
  const lines: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  const logged = await connect({ databaseUrl: url, logger });
  try {
    assert.deepEqual(await logged.publish("nobody.listens", {}), []);
  } finally {
    await logged.close();
  }
  const entry = lines.map((l) => JSON.parse(l)).find((l) => /no subscription/.test(l.msg));
  assert.equal(entry?.level, 20);
  assert.equal(entry?.topic, "nobody.listens");
});

test("bad topics, patterns and queue names are refused before any SQL", async () => {
  for (const pattern of ["", "a..b", ".a", "a.", "a*.b", "a.#b", "a.b c\n", "x".repeat(256)]) {
    await assert.rejects(q.subscribe("q", pattern), ValidationError, JSON.stringify(pattern));
  }
  await assert.rejects(q.subscribe(" q", "a.b"), ValidationError);
  for (const topic of ["", "a..b", "a.*", "a.#", "a.b*"]) {
    await assert.rejects(q.publish(topic, {}), ValidationError, JSON.stringify(topic));
  }
  await assert.rejects(q.publish("a.b", () => 1), ValidationError);
  await assert.rejects(q.publish("a.b", {}, { priority: 1.5 }), ValidationError);
  assert.deepEqual(await q.subscriptions(), []);
});

test("subscriptions live in the database: another client sees them and routes with them", async () => {
  await q.subscribe("shared", "ping.#");
  const other = await connect({ databaseUrl: url });
  try {
    assert.deepEqual((await other.subscriptions()).map((s) => s.pattern), ["ping.#"]);
    assert.deepEqual(await queuesOf(await other.publish("ping", {})), ["shared"]);
  } finally {
    await other.close();
  }
  // Rows inserted from psql route the same way: the regex is derived in the database.
  await db`insert into pgq.subscriptions (queue, pattern) values ('from-sql', 'ping.*')`;
  assert.deepEqual(await queuesOf(await q.publish("ping.x", {})), ["from-sql", "shared"]);
});
