import postgres from "postgres";
import { claimJobs } from "../src/sql/claim.js";
import { tables } from "../src/db/tables.js";
const mode = process.argv[2] ?? "auto";
const sql = postgres("postgres://postgres@127.0.0.1:55515/m", { max: 1, onnotice: () => {}, connection: mode === "auto" ? {} : { plan_cache_mode: mode } });
const t = tables(sql, "pgq");
await sql`truncate pgq.jobs`;
await sql`insert into pgq.jobs (queue, payload) select 'q', '{}' from generate_series(1, 5000)`;
await sql`vacuum analyze pgq.jobs`;
const [{ pid }] = await sql`select pg_backend_pid() as pid`;
const { readFileSync } = await import("node:fs");
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" "); return (Number(f[11]) + Number(f[12])) * 10_000; };
const times: number[] = [];
let bounds: any[] = [];
for (let i = 0; i < 30; i++) await claimJobs(sql, t, { queues: ["q"], limit: 1, worker: "w", leaseMs: 30_000 });
const c0 = cpu();
for (let i = 0; i < 2000; i++) {
  const s = performance.now();
  const claim = await claimJobs(sql, t, { queues: ["q"], bounds, limit: 1, worker: "w", leaseMs: 30_000 });
  bounds = [claim.bounds.get("q") ?? null];
  times.push(performance.now() - s);
}
const c1 = cpu();
times.sort((a, b) => a - b);
console.log(`${mode}: p50 ${times[1000]!.toFixed(3)} ms p99 ${times[1980]!.toFixed(3)} ms, backend cpu ${((c1 - c0) / 2000).toFixed(0)} µs/claim`);
await sql.end();
