// pgq work <queue...> --handler <module>: runs a worker until SIGINT or SIGTERM.
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { isTooManyConnections } from "../db/outage.js";
import { serveMetrics, type MetricsServer } from "../telemetry/server.js";
import type { ProcessingMode } from "../types.js";
import { tooManyConnections } from "../worker/shared-connections.js";
import type { PgqWorker } from "../worker/worker.js";
import { count } from "./format.js";
import { loadHandlers } from "./handler-module.js";
import { createLogger, databaseUrl, openSession, type GlobalOptions } from "./session.js";
import { stopOnSignals } from "./signals.js";
import { Rate, StatusLine } from "./status-line.js";

export interface WorkCommandOptions {
  handler: string;
  concurrency: number;
  mode: ProcessingMode;
  leaseMs?: number;
  timeoutMs?: number;
  pollIntervalMs?: number;
  metricsPort?: number;
  metricsHost: string;
}

/**
 * pgq work uses q.sql only to start (and for the metrics' gauges, when scraped): its connection
 * closes this soon once idle, and the worker opens its own only then, so that a process never
 * holds more than README "Connections" counts, even for a moment at start.
 */
const SESSION_IDLE_S = 0.2;

/** Without a terminal, progress goes to the log this often. */
const LOG_PROGRESS_EVERY_MS = 10_000;

export async function workCommand(queues: string[], options: WorkCommandOptions, globals: GlobalOptions): Promise<void> {
  const handlers = await loadHandlers(options.handler);
  const status = new StatusLine();
  const log = createLogger(globals, status.enabled ? "warn" : "info", status);
  let sessionIdle!: () => void;
  const idle = new Promise<void>((resolve) => (sessionIdle = resolve));
  const overrides = { idle_timeout: SESSION_IDLE_S, onclose: () => sessionIdle() };
  const session = await openSession(globals, log, options.concurrency + 2, overrides).catch((error: unknown) => {
    if (!isTooManyConnections(error)) throw error;
    // Refused before the worker started: the line the worker would have given, cause and all.
    const marked = globals.pooler !== "transaction";
    const worker = { mode: options.mode, concurrency: options.concurrency, listen: marked };
    throw tooManyConnections(new URL(databaseUrl(globals)).host, (error as Error).cause ?? error, [worker], marked);
  });
  let metrics: MetricsServer | undefined;
  try {
    if (options.metricsPort !== undefined) {
      metrics = await serveMetrics(options.metricsPort, options.metricsHost);
      log.info({ url: metrics.url }, "serving Prometheus metrics");
    }
    // Bounded: a pooler in between may keep the client's connection open.
    await Promise.race([idle, sleep(SESSION_IDLE_S * 10_000, undefined, { ref: false })]);
    const worker = session.q.work(queues, handlers, {
      concurrency: options.concurrency,
      mode: options.mode,
      leaseMs: options.leaseMs,
      timeoutMs: options.timeoutMs,
      pollIntervalMs: options.pollIntervalMs,
    });
    const stopped = stopOnSignals(worker, log, status);
    const progress = reportProgress(worker, queues, options.concurrency, log, status);
    await worker.ready;
    log.info({ queues, concurrency: options.concurrency, mode: options.mode, worker: worker.name }, "worker started");
    await stopped;
    progress.stop();
    log.info(progress.totals(), "worker stopped");
  } finally {
    await metrics?.close();
    await session.close();
  }
}

function reportProgress(worker: PgqWorker, queues: string[], concurrency: number, log: Logger, status: StatusLine) {
  let running = 0;
  let completed = 0;
  let failed = 0;
  let dead = 0;
  worker.on("started", () => running++);
  worker.on("completed", () => (running--, completed++));
  worker.on("failed", (_job, _error, outcome) => (running--, failed++, outcome === "dead" && dead++));
  const rate = new Rate();
  let perSecond = 0;
  const totals = () => ({ completed, failed, dead });
  const draw = () => {
    perSecond = rate.sample(completed + failed);
    if (status.enabled) {
      status.update(
        `pgq work ${queues.join(",")} · running ${running}/${concurrency} · processed ${count(completed)} · failed ${count(failed)}` +
          `${dead ? ` (${count(dead)} dead)` : ""} · ${perSecond.toFixed(1)} jobs/s`,
      );
    }
  };
  const redraw = setInterval(draw, 1000);
  const logTimer = status.enabled
    ? undefined
    : setInterval(() => log.info({ ...totals(), running, jobsPerSecond: Number(perSecond.toFixed(1)) }, "progress"), LOG_PROGRESS_EVERY_MS);
  draw();
  return {
    totals,
    stop() {
      clearInterval(redraw);
      clearInterval(logTimer);
      draw();
      status.end();
    },
  };
}
