// What q.work() accepts, checked once before anything starts, and the defaults it fills in.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { ValidationError } from "../errors.js";
import type { Handler, ProcessingMode, WorkOptions } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_TRANSACTION_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_POLL_MS = 2_000;

export interface WorkerSettings {
  name: string;
  queues: string[];
  concurrency: number;
  mode: ProcessingMode;
  leaseMs: number;
  timeoutMs: number | null;
  pollIntervalMs: number;
  listen: boolean;
}

export type Handlers = Handler | Record<string, Handler>;

/** Checks the arguments of q.work(); throws ValidationError before anything starts. */
export function workerSettings(queueOrQueues: string | string[], handlers: Handlers, options: WorkOptions = {}): WorkerSettings {
  const queues = Array.isArray(queueOrQueues) ? [...new Set(queueOrQueues)] : [queueOrQueues];
  if (queues.length === 0) throw new ValidationError("INVALID_QUEUE_NAME", "work() needs at least one queue");
  queues.forEach((q) => assertQueueName(q));
  if (typeof handlers !== "function") {
    if (handlers === null || typeof handlers !== "object") {
      throw new ValidationError("INVALID_OPTION", "the handler must be a function, or an object mapping queue names to functions");
    }
    for (const queue of queues) {
      if (typeof handlers[queue] !== "function") {
        throw new ValidationError("INVALID_OPTION", `no handler function for queue ${JSON.stringify(queue)}`);
      }
    }
  }
  const { concurrency = 1, mode = "transaction", leaseMs = DEFAULT_LEASE_MS, pollIntervalMs = DEFAULT_POLL_MS } = options;
  assertInteger(concurrency, "concurrency", 1, 1000);
  if (mode !== "transaction" && mode !== "lease") {
    throw new ValidationError("INVALID_OPTION", `mode must be "transaction" or "lease" (got ${JSON.stringify(mode)})`);
  }
  assertInteger(leaseMs, "leaseMs", 100);
  assertInteger(pollIntervalMs, "pollIntervalMs", 10);
  const timeoutMs = options.timeoutMs ?? (mode === "transaction" ? DEFAULT_TRANSACTION_TIMEOUT_MS : null);
  if (timeoutMs !== null) assertInteger(timeoutMs, "timeoutMs", 1);
  return {
    name: options.name ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`,
    queues,
    concurrency,
    mode,
    leaseMs,
    timeoutMs,
    pollIntervalMs,
    listen: options.listen ?? true,
  };
}

export function handlerFor(handlers: Handlers, queue: string): Handler {
  return typeof handlers === "function" ? handlers : handlers[queue]!;
}
