// A worker's events, counted: the counters and histograms of metrics.ts move here. The series
// of each queue are looked up once per worker, then each job costs a few additions (tallies.ts).
import type { EventEmitter } from "node:events";
import type { WorkerEvents } from "../worker/events.js";
import { claimErrors, claims, databaseOutages, jobCounters, jobDuration, jobWait, observedWorkers, type ObservedWorker } from "./metrics.js";
import type { CounterSeries, HistogramSeries } from "./tallies.js";

type Labels = "queue" | "mode";
type QueueSeries = Record<"started" | "completed" | "failed" | "dead" | "leaseLost" | "cancelled", CounterSeries<Labels>> & {
  wait: HistogramSeries<Labels>;
  duration: (outcome: string) => HistogramSeries<Labels | "outcome">;
};

export function observeWorker(worker: ObservedWorker & EventEmitter<WorkerEvents>): void {
  const { mode } = worker;
  observedWorkers.add(worker);
  worker.once("stopped", () => observedWorkers.delete(worker));
  const queues = new Map<string, QueueSeries>();
  const of = (queue: string): QueueSeries => {
    let series = queues.get(queue);
    if (!series) {
      const labels = { queue, mode };
      const durations = new Map<string, HistogramSeries<Labels | "outcome">>();
      // Made at the queue's first job, at 0, so that increase() sees the first failure too.
      series = {
        started: jobCounters.started.labels(labels),
        completed: jobCounters.completed.labels(labels),
        failed: jobCounters.failed.labels(labels),
        dead: jobCounters.dead.labels(labels),
        leaseLost: jobCounters.leaseLost.labels(labels),
        cancelled: jobCounters.cancelled.labels(labels),
        wait: jobWait.labels(labels),
        duration: (outcome) => {
          let d = durations.get(outcome);
          if (!d) durations.set(outcome, (d = jobDuration.labels({ ...labels, outcome })));
          return d;
        },
      };
      queues.set(queue, series);
    }
    return series;
  };
  worker.on("started", (job, waitedMs) => {
    const s = of(job.queue);
    s.started.value++;
    s.wait.observe(waitedMs / 1000);
  });
  worker.on("completed", (job, ms) => {
    const s = of(job.queue);
    s.completed.value++;
    s.duration("completed").observe(ms / 1000);
  });
  worker.on("failed", (job, _error, outcome, ms) => {
    const s = of(job.queue);
    (outcome === "dead" ? s.dead : s.failed).value++;
    s.duration(outcome).observe(ms / 1000);
  });
  worker.on("lease-lost", (job, ms) => {
    const s = of(job.queue);
    s.leaseLost.value++;
    s.duration("lease-lost").observe(ms / 1000);
  });
  worker.on("cancelled", (job) => of(job.queue).cancelled.value++);
  const claimsOfMode = claims.labels({ mode });
  const claimErrorsOfMode = claimErrors.labels({ mode });
  claimErrorsOfMode.inc(0);
  let claiming = true;
  worker.on("claim-done", () => {
    claimsOfMode.inc();
    claiming = true;
  });
  worker.on("claim-failed", () => {
    claimsOfMode.inc();
    claimErrorsOfMode.inc();
    if (claiming) databaseOutages.inc();
    claiming = false;
  });
}
