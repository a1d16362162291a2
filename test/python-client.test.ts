// pgq.enqueue from a client pgq did not write: Python's psycopg runs test/fixtures/enqueue.py,
// the README's Python example, and every option it sets must reach the job.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { test } from "node:test";
import { testQueue } from "./helpers/queue.js";
import { needs, PYTHON, python3Psycopg } from "./helpers/tools.js";

test("psycopg enqueues with every option, in its own transaction", needs(python3Psycopg), async () => {
  const { db, url } = await testQueue();
  await db`create table orders (id integer primary key)`;
  const { stdout } = await promisify(execFile)(PYTHON, ["test/fixtures/enqueue.py"], { env: { ...process.env, DATABASE_URL: url } });
  const { id, delayedId, runAt } = JSON.parse(stdout) as { id: string; delayedId: string; runAt: string };

  const [job] = await db`
    select queue, payload, priority, abs(extract(epoch from run_at - ${runAt}::timestamptz)) < 0.001 as run_at_as_sent, max_attempts,
           backoff_base_ms, backoff_max_ms, timeout_ms, dedupe_key, group_key
    from pgq.jobs where id = ${id}`;
  assert.deepEqual(job, {
    queue: "emails", payload: { orderId: 42, template: "receipt" }, priority: -1, run_at_as_sent: true, max_attempts: 5,
    backoff_base_ms: 1000, backoff_max_ms: 60000, timeout_ms: 30000, dedupe_key: "receipt-42", group_key: "customer-7",
  });
  // delay_ms counts from the database's now(), which is also the job's created_at.
  const [delayed] = await db`select extract(epoch from run_at - created_at)::integer as delay_s from pgq.jobs where id = ${delayedId}`;
  assert.equal(delayed!.delay_s, 90);
  assert.deepEqual((await db`select id from orders`).map((r) => r.id), [42]);
  const [jobs] = await db`select count(*)::int as n from pgq.jobs`;
  assert.equal(jobs!.n, 2, "the rolled-back enqueue left no job");
});
