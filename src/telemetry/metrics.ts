// Prometheus metrics (prom-client), in a registry of pgq's own: an application mounts it
// (metricsHandler), merges it into its own (Registry.merge), or lets `pgq work --metrics-port`
// serve it. Labels are queue, mode and outcome only: never a job id, so the series stay few.
//
// Counters and histograms move with the events of this process's workers (worker-metrics.ts).
// The gauges of jobs by queue and state come from the bounded counts of `pgq inspect`, counted
// by one process for all of them at most every QUEUE_GAUGES_MAX_AGE_MS (queue-gauges.ts), and
// only while something scrapes.
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { Counter, Gauge, Registry } from "prom-client";
import type { ProcessingMode } from "../types.js";
import { QUEUE_GAUGES_MAX_AGE_MS, type GaugeReading } from "./queue-gauges.js";
import { CounterTally, HistogramTally } from "./tallies.js";

export const metricsRegistry = new Registry();
const registers = [metricsRegistry];


const jobCounter = (name: string, help: string) => new CounterTally(name, help, ["queue", "mode"], metricsRegistry);

export const jobCounters = {
  started: jobCounter("pgq_jobs_started_total", "Attempts started"),
  completed: jobCounter("pgq_jobs_completed_total", "Jobs completed"),
  failed: jobCounter("pgq_jobs_failed_total", "Attempts that failed and will be retried"),
  dead: jobCounter("pgq_jobs_dead_total", "Jobs that failed their last attempt and moved to dead_jobs"),
  leaseLost: jobCounter("pgq_jobs_lease_lost_total", "Attempts whose lease lapsed before they settled: their result was discarded"),
  cancelled: jobCounter("pgq_jobs_cancelled_total", "Jobs cancelled while they ran"),
  // By the process whose maintenance finished them: no worker, so no mode.
  expired: new CounterTally("pgq_jobs_expired_total", "Jobs that expired before they ran", ["queue"], metricsRegistry),
};

export const jobDuration = new HistogramTally(
  "pgq_job_duration_seconds",
  "How long an attempt ran, from its start to its outcome (completed, retrying, dead, lease-lost)",
  ["queue", "mode", "outcome"],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  metricsRegistry,
);

export const jobWait = new HistogramTally(
  "pgq_job_wait_seconds",
  "How long a job waited from its run_at (when it became due) to the start of an attempt",
  ["queue", "mode"],
  [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600],
  metricsRegistry,
);

export const claims = new Counter({ name: "pgq_claims_total", help: "Claim round trips, whether or not they found jobs", labelNames: ["mode"], registers });
export const claimErrors = new Counter({ name: "pgq_claim_errors_total", help: "Claims that failed", labelNames: ["mode"], registers });
export const databaseOutages = new Counter({
  name: "pgq_database_outages_total",
  help: "Times a worker's claims began to fail after working (the database unreachable, read-only, restarting)",
  registers,
});

/** The workers of this process that are running, for the gauges read at each scrape. */
export interface ObservedWorker {
  readonly mode: ProcessingMode;
  readonly slotUsage: { busy: number; total: number };
  readonly listening: boolean | undefined;
}

export const observedWorkers = new Set<ObservedWorker>();

const sumSlots = (gauge: Gauge<"mode">, key: "busy" | "total") => {
  gauge.reset();
  for (const w of observedWorkers) gauge.inc({ mode: w.mode }, w.slotUsage[key]);
};

new Gauge({
  name: "pgq_worker_slots_busy", help: "Jobs running in this process's workers", labelNames: ["mode"], registers,
  collect() { sumSlots(this, "busy"); },
});
new Gauge({
  name: "pgq_worker_slots", help: "Jobs this process's workers may run at once (their concurrency)", labelNames: ["mode"], registers,
  collect() { sumSlots(this, "total"); },
});
new Gauge({
  name: "pgq_listener_connected",
  help: "1 when every listening worker of this process has its LISTEN connection, 0 when one is without (it polls meanwhile)",
  registers,
  collect() {
    const listeners = [...observedWorkers].map((w) => w.listening).filter((l) => l !== undefined);
    this.reset();
    if (listeners.length > 0) this.set(listeners.every(Boolean) ? 1 : 0);
  },
});

/** Where the queue gauges come from: a client's reading (queue-gauges.ts), kept until it is due again. */
class QueueCounts {
  private last: GaugeReading | undefined;
  private freshUntil = -Infinity;
  private pending: Promise<GaugeReading | undefined> | undefined;

  constructor(private readonly read: () => Promise<GaugeReading | undefined>) {}

  /** The reading, read again once it has aged QUEUE_GAUGES_MAX_AGE_MS; undefined while the database cannot say. */
  current(): Promise<GaugeReading | undefined> {
    if (performance.now() < this.freshUntil) return Promise.resolve(this.last);
    this.pending ??= this.read()
      .then(
        (reading) => reading,
        // Stale depths would hide an outage: the series vanish instead, until counts come again.
        () => undefined,
      )
      .then((reading) => {
        this.last = reading;
        // A reading another process is refreshing just now is kept a second, not read again at once.
        this.freshUntil = performance.now() + Math.max(MIN_KEPT_MS, QUEUE_GAUGES_MAX_AGE_MS - (reading?.ageMs ?? 0));
        return reading;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}

const MIN_KEPT_MS = 1_000;
const queueCounts = new Set<QueueCounts>();

/** Makes a client's queues part of the gauges, until the returned function is called. */
export function watchQueues(read: () => Promise<GaugeReading | undefined>): () => void {
  const counts = new QueueCounts(read);
  queueCounts.add(counts);
  return () => queueCounts.delete(counts);
}

async function readings(): Promise<GaugeReading[]> {
  const all = await Promise.all([...queueCounts].map((c) => c.current()));
  return all.filter((r) => r !== undefined);
}

const STATES = ["ready", "scheduled", "running", "retrying", "dead"] as const;

new Gauge({
  name: "pgq_jobs",
  help: `Jobs by queue and state, counted exactly up to 10000 and estimated above, at most ${QUEUE_GAUGES_MAX_AGE_MS / 1000} s old`,
  labelNames: ["queue", "state"],
  registers,
  async collect() {
    const found = await readings();
    this.reset();
    for (const { queues } of found) for (const q of queues) for (const state of STATES) this.set({ queue: q.queue, state }, q[state]);
  },
});
new Gauge({
  name: "pgq_oldest_ready_job_age_seconds",
  help: "Per queue, how long the oldest job that could run now has waited (0 when none waits): the number to alert on",
  labelNames: ["queue"],
  registers,
  async collect() {
    const found = await readings();
    this.reset();
    for (const { queues } of found) for (const q of queues) this.set({ queue: q.queue }, (q.oldestReadyAgeMs ?? 0) / 1000);
  },
});

/** The registry in Prometheus's text format, or the reason it could not be read. */
export async function metricsText(): Promise<{ status: 200 | 500; contentType: string; body: string }> {
  try {
    return { status: 200, contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
  } catch (error) {
    return { status: 500, contentType: "text/plain", body: `pgq metrics failed: ${(error as Error).message}\n` };
  }
}

/** Serves the registry in Prometheus's text format; mount it on any node:http-style server. */
export async function metricsHandler(_request: IncomingMessage, response: ServerResponse): Promise<void> {
  const { status, contentType, body } = await metricsText();
  response.writeHead(status, { "content-type": contentType }).end(body);
}
