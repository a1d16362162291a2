// The plans of inspect(), stats() and the claim at a million jobs: every walk of pgq.jobs and
// pgq.dead_jobs is an index walk that stops at inspect()'s bound, and nothing would be
// JIT-compiled. The plans come from auto_explain, so they are the ones PostgreSQL ran for these
// very calls, in the transaction and settings pgq gives them. PostgreSQL built with LLVM (CI's 15)
// adds a "JIT" key to a plan it compiles; built without (the embedded 18), it adds none, so a plan
// also counts as compiled when its cost passes jit_above_cost while jit is on, and both CI runs notice.
// Timings are printed, never asserted.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { inspectQueues } from "../src/admin/inspect.js";
import { queueStats } from "../src/admin/stats.js";
import { tables } from "../src/db/tables.js";
import { claimJobs } from "../src/sql/claim.js";
import { freshDatabase } from "./helpers/db.js";

const EXACT_UP_TO = 10_000;
const QUEUES = ["plans-0", "plans-1", "plans-2", "plans-3", "plans-4"];

const { url } = await freshDatabase();
const db = postgres(url, { max: 1, onnotice: () => {} });
// One connection, so that every statement runs in the session auto_explain is loaded into.
const notices: string[] = [];
const explained = postgres(url, { max: 1, onnotice: (n) => notices.push(n.message ?? "") });
test.after(async () => {
  await db.end();
  await explained.end();
});
await explained`load 'auto_explain'`;
await explained`select set_config('auto_explain.log_min_duration', '0', false), set_config('auto_explain.log_level', 'notice', false),
                       set_config('auto_explain.log_format', 'json', false), set_config('auto_explain.log_analyze', 'on', false),
                       set_config('auto_explain.log_timing', 'off', false), set_config('auto_explain.log_settings', 'on', false)`;
const [{ jit_above_cost: jitAboveCost }] = await db<[{ jit_above_cost: number }]>`select current_setting('jit_above_cost')::float8 as jit_above_cost`;
// Autovacuum would analyse the tables at a moment of its choosing: the test decides when.
await db`alter table pgq.jobs set (autovacuum_enabled = false)`;
await db`alter table pgq.dead_jobs set (autovacuum_enabled = false)`;

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  "Rows Removed by Filter"?: number;
  "Total Cost": number;
  Plans?: PlanNode[];
}

/** What is wrong with the plans of the statements run since `from`: seq scans, unbounded walks, JIT. */
function planProblems(from: number): string[] {
  const problems: string[] = [];
  for (const notice of notices.slice(from)) {
    const plan = JSON.parse(notice.slice(notice.indexOf("\n") + 1)) as {
      "Query Text": string; Plan: PlanNode; JIT?: unknown; Settings?: Record<string, string>;
    };
    const query = plan["Query Text"].trim().replace(/\s+/g, " ").slice(0, 100);
    const jitOn = (plan.Settings?.jit ?? "on") !== "off";
    if (plan.JIT || (jitOn && plan.Plan["Total Cost"] > jitAboveCost)) problems.push(`JIT for: ${query}`);
    // The planner's estimates (EXPLAIN without ANALYZE) run nothing: only their JIT matters.
    if (/^explain\b/i.test(query)) continue;
    const walk = (node: PlanNode) => {
      const table = node["Relation Name"];
      if ((table === "jobs" || table === "dead_jobs") && node["Node Type"].endsWith("Scan")) {
        const on = `${node["Node Type"]} on ${table}${node["Index Name"] ? ` using ${node["Index Name"]}` : ""}`;
        const read = (node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0);
        if (!/^Index (Only )?Scan$/.test(node["Node Type"])) problems.push(`${on} in: ${query}`);
        else if (read > EXACT_UP_TO + 1) problems.push(`${on} reads ${read} rows per loop in: ${query}`);
      }
      node.Plans?.forEach(walk);
    };
    walk(plan.Plan);
  }
  return problems;
}

async function timed(fn: () => Promise<unknown>): Promise<string> {
  const started = performance.now();
  await fn();
  return `${(performance.now() - started).toFixed(1)} ms`;
}

/** inspect() and stats() (timed on a plain connection), then the plans they ran. */
async function checkOperatorReads(t: { diagnostic(message: string): void }, what: string) {
  const plain = { inspect: await timed(() => inspectQueues(db, "pgq")), stats: await timed(() => queueStats(db, "pgq")) };
  t.diagnostic(`${what}: inspect() ${plain.inspect}, stats() ${plain.stats}`);
  const from = notices.length;
  const inspection = await inspectQueues(explained, "pgq", { exactUpTo: EXACT_UP_TO });
  await queueStats(explained, "pgq");
  assert.notEqual(notices.length, from, "auto_explain logged no plans");
  assert.deepEqual(planProblems(from), []);
  return inspection;
}

test("inspect() and stats() on an empty database: no JIT", async (t) => {
  const inspection = await checkOperatorReads(t, "empty");
  assert.deepEqual(inspection.queues, []);
});

test("inspect(), stats() and the claim at a million jobs, before and after ANALYZE: index walks, bounded, no JIT", async (t) => {
  // Per 1,000 jobs of each queue: 800 ready, 80 scheduled, 40 retrying, 1 running, and 79 in one
  // group (its head is ready, the other 78 wait behind it); three priorities. Every walk has more
  // rows than the bound to stop at, except the running jobs, which are as few as workers' slots.
  // Then 100,000 dead jobs, dying over the last day.
  const started = performance.now();
  await db`
    insert into pgq.jobs (queue, payload, priority, run_at, attempts, group_key, locked_by, locked_until, lease_token)
    select 'plans-' || i % 5, '{}', (i / 5) % 3 - 1,
           case when b < 800 or b >= 920 then now() - interval '1 minute' else now() + interval '1 hour' end,
           case when b between 880 and 919 or b = 999 then 1 else 0 end,
           case when b between 920 and 998 then 'g' || (i / 5000) end,
           case when b = 999 then 'w' end,
           case when b = 999 then now() + interval '1 minute' end,
           case when b = 999 then gen_random_uuid() end
    from generate_series(0, 999999) i, lateral (select (i / 5) % 1000 as b) b`;
  await db`
    insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
                               errors, created_at, died_at)
    select -i, 'plans-' || i % 5, '{}', 0, 3, 3, 1000, 60000, '[]', now() - interval '1 day',
           now() - (i % 86400) * interval '1 second'
    from generate_series(1, 100000) i`;
  t.diagnostic(`loaded 1,000,000 jobs and 100,000 dead jobs in ${(performance.now() - started).toFixed(0)} ms`);

  // Never analysed: the planner guesses from the table's size alone (reading, say, `locked_until
  // is not null` as 99.5% of the rows), as it does for a while after a bulk load.
  const first = await checkOperatorReads(t, "1M jobs, never analysed");
  assert.deepEqual(first.queues.map((s) => s.queue), QUEUES);
  assert.deepEqual(first.queues.map((s) => s.running), [200, 200, 200, 200, 200]);

  await db`analyze pgq.jobs`;
  await db`analyze pgq.dead_jobs`;
  const analysed = await checkOperatorReads(t, "1M jobs, analysed");
  for (const s of analysed.queues) {
    assert.deepEqual(s.estimated, ["ready", "scheduled", "retrying", "dead"]);
    assert.ok(s.ready > 100_000 && s.ready < 300_000, `${s.queue}: ready ~${s.ready}, not ~160,200`);
  }

  // One queue's running jobs, listed one by one (inspect --queue): a walk of jobs_leased, cut at the bound.
  const listedFrom = notices.length;
  const one = await inspectQueues(explained, "pgq", { queue: QUEUES[0]!, exactUpTo: EXACT_UP_TO, runningJobsUpTo: 50 });
  assert.deepEqual([one.runningJobs?.jobs.length, one.runningJobs?.more], [50, true]);
  assert.deepEqual(planProblems(listedFrom), []);

  const from = notices.length;
  const { jobs: claimed } = await claimJobs(explained, tables(explained, "pgq"), { queues: QUEUES, limit: 100, worker: "plans", leaseMs: 60_000 });
  assert.equal(claimed.length, 100);
  assert.deepEqual(planProblems(from), []);

  // A limited queue's claim also runs claim_budget() and record_starts(): their statements are
  // index walks too (auto_explain shows statements inside functions only when asked).
  await db`insert into pgq.queues (queue, concurrency, rate_count, rate_per_ms) values (${QUEUES[0]!}, 1000, 1000, 1000)`;
  await explained`select set_config('auto_explain.log_nested_statements', 'on', false)`;
  const limitedFrom = notices.length;
  const limited = await timed(async () => {
    const { jobs } = await claimJobs(explained, tables(explained, "pgq"), { queues: [QUEUES[0]!], limit: 100, worker: "plans", leaseMs: 60_000 });
    assert.equal(jobs.length, 100);
  });
  await explained`select set_config('auto_explain.log_nested_statements', 'off', false)`;
  t.diagnostic(`a limited queue's claim of 100 with 1,000 running: ${limited}`);
  assert.deepEqual(planProblems(limitedFrom), []);

  // Claims after a connection's first reuse one generic plan (sql/claim.ts): it walks the same
  // indexes, bounded, without JIT, across several queues as for one.
  const planned = () => explained<[{ generic: number; custom: number }]>`
    select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements where statement like '%claimable as%'`;
  const [before] = await planned();
  const genericFrom = notices.length;
  const { jobs: again } = await claimJobs(explained, tables(explained, "pgq"), { queues: QUEUES, limit: 1000, worker: "plans", leaseMs: 60_000 });
  assert.equal(again.length, 1000);
  assert.deepEqual(planProblems(genericFrom), []);
  const [after] = await planned();
  assert.deepEqual(after, { generic: before!.generic + 1, custom: before!.custom }, "a later claim reuses the generic plan");
});
