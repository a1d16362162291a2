// Stopping a worker from the keyboard or a process manager, in two stages.
//
// The first SIGINT/SIGTERM stops claiming and lets in-flight jobs finish; a second one aborts
// them and hands them back to the queue, without spending an attempt, for another worker.
import type { Logger } from "pino";
import type { PgqWorker } from "../worker/worker.js";
import type { StatusLine } from "./status-line.js";

/** Stops the worker on signals; resolves when a stop asked for by a signal completes. */
export function stopOnSignals(worker: PgqWorker, log: Logger, status: StatusLine): Promise<void> {
  return new Promise((resolve, reject) => {
    let signals = 0;
    // At a terminal, a line for the operator; elsewhere, a log record.
    const say = (signal: NodeJS.Signals, message: string) =>
      status.enabled ? status.print(`${signal}: ${message}`) : log.info({ signal }, message);
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        say(signal, `stopping: finishing the jobs in flight (${signal} again releases them and exits at once)`);
        worker.stop().then(resolve, reject);
      } else if (signals === 2) {
        say(signal, "stopping now: releasing the jobs in flight for other workers");
        worker.stop({ graceMs: 0 }).then(resolve, reject);
      } else {
        process.exit(1); // a third signal: the operator wants out, whatever is left
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
