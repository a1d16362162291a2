// Telemetry's cost (issue 14: with no OpenTelemetry SDK and metrics on, a lease-mode drain keeps
// at least 0.95x the rate without them). One process, one server, the same backlog drained with
// telemetry on and off in alternating order, each drain on a fresh copy of a migrated database.
//
// on:  as shipped, no SDK registered, and /metrics scraped every second during the drain (a
//      Prometheus scrapes every 15 s or more: this is the pessimistic side), queue gauges included.
// off: the same worker with the metric listeners taken off its events as it starts: what is
//      left is an emit with no listener and the check for an SDK, which any instrumentation has.
import postgres from "postgres";
import { connect, metricsRegistry } from "../../src/index.js";
import type { Worker } from "../../src/types.js";
import type { BenchServer } from "../server.js";
import { median } from "../stats.js";
import { fillBacklog, timedDrain, type DrainResult } from "./backlog.js";

/** The events src/telemetry/worker-metrics.ts counts. */
const COUNTED_EVENTS = ["started", "completed", "failed", "lease-lost", "cancelled", "claim-done", "claim-failed"] as const;

export async function telemetryStudy(server: BenchServer, quick: boolean, pairs: number): Promise<void> {
  const jobs = quick ? 10_000 : 30_000;
  const options = { mode: "lease", concurrency: 1000 } as const;
  const template = "bench_telemetry_template";
  const templateUrl = await server.createDatabase(template);
  const q = await connect({ databaseUrl: templateUrl });
  await q.migrate();
  await q.close();
  const sql = postgres(templateUrl, { max: 1, onnotice: () => {} });
  await fillBacklog(sql, jobs).finally(() => sql.end({ timeout: 5 }));
  const results: Record<"on" | "off", DrainResult[]> = { on: [], off: [] };
  console.log(`\n## Telemetry on and off: ${jobs.toLocaleString("en-US")} no-op jobs drained ${pairs} times each, ${JSON.stringify(options)}`);
  try {
    for (let pair = 0; pair < pairs; pair++) {
      for (const side of pair % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)) {
        const name = "bench_telemetry";
        const url = await server.createDatabase(name, template);
        try {
          const scrape = () => void metricsRegistry.metrics();
          const result = side === "on"
            ? await timedDrain(url, options, jobs, 120_000, scrape)
            : await timedDrain(url, options, jobs, 120_000, undefined, untallied);
          results[side].push(result);
          console.log(`pair ${pair + 1}/${pairs}  ${side.padEnd(3)}  ${result.rate.toFixed(0)} jobs/s  ${result.cpuUsPerJob.toFixed(1)} µs CPU/job`);
        } finally {
          await server.dropDatabase(name);
        }
      }
    }
  } finally {
    await server.dropDatabase(template);
  }
  const rate = (side: "on" | "off") => median(results[side].map((r) => r.rate));
  const cpu = (side: "on" | "off") => median(results[side].map((r) => r.cpuUsPerJob));
  console.log(`medians: on ${rate("on").toFixed(0)} jobs/s, ${cpu("on").toFixed(1)} µs CPU/job; off ${rate("off").toFixed(0)} jobs/s, ${cpu("off").toFixed(1)} µs CPU/job`);
  // Each pair ran back to back, so its ratio is steadier than the ratio of medians on a loaded machine.
  const pairRatio = median(results.on.map((on, k) => on.rate / results.off[k]!.rate));
  console.log(`on/off: rate ${(rate("on") / rate("off")).toFixed(3)}, median of pairs ${pairRatio.toFixed(3)} (target >= 0.95); CPU per job ${(cpu("on") / cpu("off")).toFixed(3)}`);
}

/** Takes the metric listeners off the worker's events (q.work() returns an EventEmitter). */
function untallied(worker: Worker): void {
  const emitter = worker as Worker & { removeAllListeners(event: string): void };
  for (const event of COUNTED_EVENTS) emitter.removeAllListeners(event);
}
