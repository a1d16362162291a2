// Memory: a pgq worker's RSS sampled every second over a drain of a million jobs. The backlog is
// inserted in SQL, so the process's memory is the worker's (plus this small harness).
import postgres from "postgres";
import { connect } from "../../src/index.js";
import type { BenchServer } from "../server.js";
import { quantile } from "../stats.js";
import { fillBacklog, timedDrain } from "./backlog.js";

const MB = 1024 * 1024;

export async function memoryStudy(server: BenchServer, quick: boolean): Promise<void> {
  const jobs = quick ? 100_000 : 1_000_000;
  const name = "bench_memory";
  const url = await server.createDatabase(name);
  try {
    const q = await connect({ databaseUrl: url });
    await q.migrate();
    await q.close();
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    await fillBacklog(sql, jobs).finally(() => sql.end({ timeout: 5 }));
    const options = { mode: "lease", concurrency: 256 } as const;
    const rss: number[] = [];
    const heap: number[] = [];
    const sample = () => {
      const m = process.memoryUsage();
      rss.push(m.rss / MB);
      heap.push(m.heapUsed / MB);
    };
    sample();
    const result = await timedDrain(url, options, jobs, 15 * 60_000, sample);
    sample();
    const tenth = Math.max(1, Math.floor(rss.length / 10));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`\n## Memory: ${result.jobs.toLocaleString("en-US")} jobs drained by one pgq worker (${JSON.stringify(options)}) in ${result.seconds.toFixed(0)} s, ${result.rate.toFixed(0)} jobs/s`);
    console.log(`RSS MB: start ${rss[0]!.toFixed(0)}, first tenth mean ${mean(rss.slice(1, 1 + tenth)).toFixed(0)}, last tenth mean ${mean(rss.slice(-tenth)).toFixed(0)}, p50 ${quantile(rss, 0.5).toFixed(0)}, max ${Math.max(...rss).toFixed(0)}`);
    console.log(`heapUsed MB: first tenth mean ${mean(heap.slice(1, 1 + tenth)).toFixed(0)}, last tenth mean ${mean(heap.slice(-tenth)).toFixed(0)}, max ${Math.max(...heap).toFixed(0)}`);
    console.log(`RSS every ${Math.max(1, Math.floor(rss.length / 20))} s: ${rss.filter((_, k) => k % Math.max(1, Math.floor(rss.length / 20)) === 0).map((v) => v.toFixed(0)).join(" ")}`);
  } finally {
    await server.dropDatabase(name);
  }
}
