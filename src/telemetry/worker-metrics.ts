// A worker's events, counted: the counters and histograms of metrics.ts move here. The labelled
// series of each queue are looked up once per worker, not at every job.
import type { Counter, Histogram } from "prom-client";
import type { EventEmitter } from "node:events";
import type { WorkerEvents } from "../worker/events.js";
import { claimErrors, claims, databaseOutages, jobCounters, jobDuration, jobWait, observedWorkers, type ObservedWorker } from "./metrics.js";

type Labels = "queue" | "mode";
type QueueSeries = Record<"started" | "completed" | "failed" | "dead" | "leaseLost" | "cancelled", Counter.Internal> & {
  wait: Histogram.Internal<Labels>;
  duration: (outcome: string) => Histogram.Internal<Labels | "outcome">;
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
      const durations = new Map<string, Histogram.Internal<Labels | "outcome">>();
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
      // At 0 from the queue's first job, so that increase() sees the first failure too.
      for (const counter of [series.started, series.completed, series.failed, series.dead, series.leaseLost, series.cancelled]) counter.inc(0);
      queues.set(queue, series);
    }
    return series;
  };
  worker.on("started", (job, waitedMs) => {
    const s = of(job.queue);
    s.started.inc();
    s.wait.observe(waitedMs / 1000);
  });
  worker.on("completed", (job, ms) => {
    const s = of(job.queue);
    s.completed.inc();
    s.duration("completed").observe(ms / 1000);
  });
  worker.on("failed", (job, _error, outcome, ms) => {
    const s = of(job.queue);
    (outcome === "dead" ? s.dead : s.failed).inc();
    s.duration(outcome).observe(ms / 1000);
  });
  worker.on("lease-lost", (job, ms) => {
    const s = of(job.queue);
    s.leaseLost.inc();
    s.duration("lease-lost").observe(ms / 1000);
  });
  worker.on("cancelled", (job) => of(job.queue).cancelled.inc());
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
