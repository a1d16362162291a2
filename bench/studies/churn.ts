// Churn: dead tuples in pgq.jobs while jobs flow through a large table, under 000003's autovacuum
// settings and under the current ones. The table holds a backlog of jobs due tomorrow (so its
// size, and with it a scale factor's trigger point, is large), while a producer enqueues ready
// jobs at a steady rate and a worker completes them. Samples n_dead_tup every 5 s; prints the
// update counters (HOT and new-page updates) and the claim's EXPLAIN at the end.
import postgres from "postgres";
import { connect } from "../../src/index.js";
import { now, sleep } from "../clock.js";
import type { BenchServer } from "../server.js";
import { QUEUE } from "../systems/system.js";
import { fillBacklog } from "./backlog.js";
import { explainClaim } from "./scale.js";

const RATE = 300; // jobs/s: 36,000 dead tuples a minute (two per job), below 000003's trigger point at 5M rows (51,000)
const BATCH = 50;

const SETTINGS = {
  "000003 (scale factor 0.01, threshold 1000)": "autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000",
  "000004 (scale factor 0, threshold 1000)": "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000",
};

export async function churnStudy(server: BenchServer, quick: boolean): Promise<void> {
  const size = quick ? 500_000 : 5_000_000;
  const seconds = quick ? 150 : 240;
  for (const [label, settings] of Object.entries(SETTINGS)) {
    const name = "bench_churn";
    const url = await server.createDatabase(name);
    const q = await connect({ databaseUrl: url });
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    try {
      await q.migrate();
      await sql.unsafe(`alter table pgq.jobs set (${settings})`);
      await fillBacklog(sql, size, 86_400);
      const stats = async () => {
        const [row] = await sql<{ dead: number; live: number; vacuums: number; upd: number; hot: number; newpage: number | null; pages: number }[]>`
          select n_dead_tup::int as dead, n_live_tup::int as live, autovacuum_count::int as vacuums, n_tup_upd::int as upd,
                 n_tup_hot_upd::int as hot, (to_jsonb(s) ->> 'n_tup_newpage_upd')::int as newpage,
                 (pg_relation_size('pgq.jobs') / 8192)::int as pages
          from pg_stat_user_tables s where relid = 'pgq.jobs'::regclass`;
        return row!;
      };
      const start = await stats();
      let handled = 0;
      const worker = q.work(QUEUE, () => void handled++, { mode: "lease", concurrency: 64 });
      await worker.ready;
      const dead: number[] = [];
      const t0 = now();
      let next = t0;
      let nextSample = t0;
      while (now() - t0 < seconds * 1000) {
        await q.enqueueMany(QUEUE, Array.from({ length: BATCH }, (_, i) => ({ i })));
        next += (BATCH / RATE) * 1000;
        if (now() >= nextSample) {
          dead.push((await stats()).dead);
          nextSample += 5000;
        }
        await sleep(Math.max(0, next - now()));
      }
      await worker.stop();
      const end = await stats();
      const updates = end.upd - start.upd;
      console.log(`\n## Churn, ${label}: ${size.toLocaleString("en-US")} jobs due tomorrow, ${RATE} jobs/s through the queue for ${seconds} s (${handled.toLocaleString("en-US")} handled)`);
      console.log(`n_dead_tup every 5 s: ${dead.join(" ")}`);
      console.log(`max ${Math.max(...dead).toLocaleString("en-US")}, mean ${Math.round(dead.reduce((a, b) => a + b, 0) / dead.length).toLocaleString("en-US")}; autovacuums ${end.vacuums - start.vacuums}; heap pages ${start.pages} -> ${end.pages}`);
      console.log(`updates ${updates}: HOT ${end.hot - start.hot}${end.newpage === null ? "" : `, to a new page ${end.newpage - start.newpage!}`}`);
      await explainClaim(url, sql, `after ${seconds} s of churn (${label})`);
    } finally {
      await sql.end({ timeout: 5 });
      await q.close();
      await server.dropDatabase(name);
    }
  }
}
