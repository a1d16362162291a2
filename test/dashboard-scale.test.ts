// The dashboard's pages at a million jobs: each answers from bounded reads (inspect's counts,
// one walk per job page). Times are printed, not asserted: they depend on the machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { dashboard } from "../src/index.js";
import { Browser } from "./helpers/dashboard.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();

test("every page at 1,000,000 jobs and 100,000 dead jobs", async (t) => {
  await db`
    insert into pgq.jobs (queue, payload, priority, run_at, attempts)
    select 'scale-' || i % 5, jsonb_build_object('user', i), (i / 5) % 3 - 1,
           now() - case when i % 10 < 8 then interval '1 minute' else interval '-1 hour' end, (i % 10 = 9)::int
    from generate_series(0, 999999) i`;
  await db`
    insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms, errors, created_at, died_at)
    select -i, 'scale-' || i % 5, '{}', 0, 3, 3, 1000, 60000, '[]', now() - interval '1 day', now() - (i % 86400) * interval '1 second'
    from generate_series(1, 100000) i`;
  await db`analyze pgq.jobs`;
  await db`analyze pgq.dead_jobs`;
  const b = new Browser(dashboard(q).fetch);
  const [{ id }] = await db`select id::text from pgq.jobs order by id desc limit 1`;
  for (const path of ["/", "/fragments/overview", "/jobs", "/jobs?queue=scale-1&state=ready", "/jobs?queue=scale-2&state=retrying",
    "/jobs?state=dead", "/jobs?state=dead&queue=scale-3", "/jobs?payload=%7B%22user%22%3A17%7D", `/jobs/${id}`, "/workers"]) {
    await b.get(path);
    const started = performance.now();
    const res = await b.get(path);
    const ms = performance.now() - started;
    assert.equal(res.status, 200, path);
    await res.text();
    t.diagnostic(`${path}: ${ms.toFixed(1)} ms`);
  }
});
