// The dashboard's pages at a million jobs: each answers from bounded reads (inspect's counts,
// the chart's sample per minute, one walk per job page). Times are printed, not asserted: they
// depend on the machine. Each page is loaded LOADS times after a first load, and the median and
// the slowest are printed. The overview's first load (a dashboard's first look at the chart) is
// measured on fresh dashboards, and its refreshes more than a second apart, since loads within a
// second share one read.
import assert from "node:assert/strict";
import { test } from "node:test";
import { dashboard } from "../src/index.js";
import { Browser } from "./helpers/dashboard.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();
const LOADS = 7;

/** How long `load` takes, in ms. */
async function timed(load: () => Promise<Response>): Promise<number> {
  const started = performance.now();
  const res = await load();
  await res.text();
  const ms = performance.now() - started;
  assert.equal(res.status, 200);
  return ms;
}

function summary(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
}

test("every page at 1,000,000 jobs, 100,000 dead jobs and 300,000 finished in the last hour", async (t) => {
  // History's partitions: rows kept 7 or 8 days land in two of them, as a week's retention spreads them.
  await q.migrate();
  await db`
    insert into pgq.jobs (queue, payload, priority, run_at, attempts)
    select 'scale-' || i % 5, jsonb_build_object('user', i), (i / 5) % 3 - 1,
           now() - case when i % 10 < 8 then interval '1 minute' else interval '-1 hour' end, (i % 10 = 9)::int
    from generate_series(0, 999999) i`;
  await db`
    insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms, errors, created_at, died_at)
    select -i, 'scale-' || i % 5, '{}', 0, 3, 3, 1000, 60000, '[]', now() - interval '1 day', now() - (i % 86400) * interval '1 second'
    from generate_series(1, 100000) i`;
  await db`
    insert into pgq.history (id, queue, state, payload, result, priority, attempts, max_attempts, errors, created_at, started_at, finished_at, worker, purge_at)
    select 2000000 + i, 'scale-' || i % 5, case when i % 49 = 0 then 'dead' when i % 97 = 0 then 'cancelled' else 'completed' end,
           jsonb_build_object('order', i), jsonb_build_object('ok', true), 0, 1, 3, '[]',
           now() - interval '2 hours', now() - interval '2 hours', now() - i * interval '12 milliseconds', 'w1',
           now() + interval '7 days' + (i % 2) * interval '1 day'
    from generate_series(1, 300000) i`;
  await db`analyze pgq.jobs`;
  await db`analyze pgq.dead_jobs`;
  await db`analyze pgq.history`;
  const [live] = await db`select id::text from pgq.jobs order by id desc limit 1`;
  const b = new Browser(dashboard(q).fetch);

  const firstLoads: number[] = [];
  for (let i = 0; i < LOADS; i++) firstLoads.push(await timed(() => new Browser(dashboard(q).fetch).get("/")));
  t.diagnostic(`/ (a dashboard's first load, its chart read in part): ${summary(firstLoads)}`);

  for (const path of ["/jobs", "/jobs?queue=scale-1&state=ready", "/jobs?queue=scale-2&state=retrying",
    "/jobs?state=dead", "/jobs?state=dead&queue=scale-3", "/jobs?payload=%7B%22user%22%3A17%7D", `/jobs/${live!.id}`,
    "/jobs?state=finished", "/jobs?state=completed&queue=scale-1", "/jobs?state=cancelled", "/jobs?state=expired&queue=scale-4",
    "/jobs?state=finished&payload=%7B%22order%22%3A17%7D", "/jobs/2000017", "/workers"]) {
    const first = await timed(() => b.get(path));
    const loads: number[] = [];
    for (let i = 0; i < LOADS; i++) loads.push(await timed(() => b.get(path)));
    t.diagnostic(`${path}: ${summary(loads)} (first load ${first.toFixed(1)} ms)`);
  }

  // Refreshes, each more than a second after the last (loads within a second share one read):
  // the first few fill the rest of the chart's hour in, the others read its last minutes.
  const refreshes: number[] = [];
  for (let i = 0; i < LOADS + 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1100));
    refreshes.push(await timed(() => b.get("/fragments/overview")));
  }
  t.diagnostic(`/fragments/overview, filling the hour in: ${refreshes.slice(0, 5).map((ms) => ms.toFixed(1)).join(", ")} ms`);
  t.diagnostic(`/fragments/overview, refreshes with the hour whole: ${summary(refreshes.slice(5))}`);
  const page = await (await b.get("/")).text();
  assert.doesNotMatch(page, /so far/, "the chart's hour is whole after a few refreshes");
});
