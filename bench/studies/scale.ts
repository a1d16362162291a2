// Scale: pgq's claim as pgq.jobs grows from 10 thousand to millions of rows, and after churn has
// left dead tuples at the head of the claim index. Prints EXPLAIN (ANALYZE, BUFFERS) of the claim
// as src/sql/claim.ts issues it, and the drain rate at each size.
import postgres, { type Sql } from "postgres";
import { claimJobs } from "../../src/sql/claim.js";
import { connect } from "../../src/index.js";
import { tables } from "../../src/db/tables.js";
import type { BenchServer } from "../server.js";
import { QUEUE } from "../systems/system.js";
import { fillBacklog, timedDrain } from "./backlog.js";

const CLAIM_LIMIT = 16;

export async function scaleStudy(server: BenchServer, quick: boolean): Promise<void> {
  const sizes = quick ? [10_000, 500_000] : [10_000, 5_000_000];
  for (const size of sizes) {
    // Each mode drains part of the backlog: a quarter at most, so both always find enough.
    const drained = Math.min(quick ? 5_000 : 20_000, size / 4);
    const name = "bench_scale";
    const url = await server.createDatabase(name);
    const q = await connect({ databaseUrl: url });
    await q.migrate();
    await q.close();
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    try {
      console.log(`\n## pgq.jobs with ${size.toLocaleString("en-US")} ready jobs`);
      let t = Date.now();
      await fillBacklog(sql, size);
      console.log(`(filled and vacuumed in ${((Date.now() - t) / 1000).toFixed(0)} s)`);
      await explainClaim(url, sql, "fresh, after vacuum");
      t = Date.now();
      const tx = await timedDrain(url, { mode: "transaction", concurrency: 16 }, drained, 120_000);
      const lease = await timedDrain(url, { mode: "lease", concurrency: 256 }, drained, 120_000);
      console.log(`drain of ${drained.toLocaleString("en-US")} jobs: transaction mode, concurrency 16: ${tx.rate.toFixed(0)} jobs/s; lease mode, concurrency 256: ${lease.rate.toFixed(0)} jobs/s`);
      await explainClaim(url, sql, `after draining ${(tx.jobs + lease.jobs).toLocaleString("en-US")} jobs (churn)`);
    } finally {
      await sql.end({ timeout: 5 });
      await server.dropDatabase(name);
    }
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of the claim exactly as pgq sends it, rolled back so nothing is claimed. */
export async function explainClaim(url: string, sql: Sql, when: string): Promise<void> {
  const seen: { query: string; parameters: unknown[] }[] = [];
  const spy = postgres(url, { max: 1, onnotice: () => {}, debug: (_c, query, parameters) => seen.push({ query, parameters }) });
  const request = { queues: [QUEUE], limit: CLAIM_LIMIT, worker: "bench-explain", leaseMs: 30_000 };
  let captured: { query: string; parameters: unknown[] } | undefined;
  try {
    await rolledBack(spy, async (tx) => {
      await claimJobs(tx, tables(spy, "pgq"), request);
      captured = seen.at(-1); // the claim: the statement that has just run
    });
  } finally {
    await spy.end({ timeout: 5 });
  }
  if (!captured) throw new Error("the claim statement was not captured");
  const [stats] = await sql<{ live: number; dead: number }[]>`
    select n_live_tup::int as live, n_dead_tup::int as dead from pg_stat_user_tables where relid = 'pgq.jobs'::regclass`;
  const plan = await rolledBack(sql, (tx) =>
    tx.unsafe<{ "QUERY PLAN": string }[]>(`explain (analyze, buffers) ${captured!.query}`, captured!.parameters as never[]),
  );
  console.log(`\nEXPLAIN (ANALYZE, BUFFERS) of the claim (limit ${CLAIM_LIMIT}), ${when}; live tuples ${stats?.live}, dead ${stats?.dead}:\n`);
  console.log(plan.map((row) => `    ${row["QUERY PLAN"]}`).join("\n"));
}

class Rollback extends Error {}

async function rolledBack<T>(sql: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  let result: T | undefined;
  await sql
    .begin(async (tx) => {
      result = await fn(tx as unknown as Sql);
      throw new Rollback();
    })
    .catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  return result as T;
}
