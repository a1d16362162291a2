// What every public entry point checks first, before any SQL and before it opens anything: that
// its client is still open, and that its options argument is an object. A string where options
// belong (connect("postgres://...")) would otherwise be read as options that set nothing, and the
// call would go ahead with defaults the caller never meant.
import { ClientClosedError, ValidationError } from "./errors.js";

/** Each entry point that takes options, with a call that shows what it takes. */
const EXAMPLES = {
  "connect()": 'connect({ databaseUrl: "postgres://app@db.internal/app" })',
  "q.enqueue()": 'q.enqueue("emails", payload, { priority: 1, delayMs: 5000 })',
  "q.enqueueMany()": 'q.enqueueMany("emails", payloads, { maxAttempts: 5 })',
  "q.work()": 'q.work("emails", handler, { concurrency: 4 })',
  "q.schedule()": 'q.schedule("nightly", "0 3 * * *", "reports", payload, { timezone: "Europe/Paris" })',
  "q.publish()": 'q.publish("order.created", payload, { priority: 1 })',
  "q.inspect()": 'q.inspect({ queue: "emails" })',
  "q.deadJobs.list()": 'q.deadJobs.list({ queue: "emails", limit: 20 })',
  "q.deadJobs.retry()": 'q.deadJobs.retry({ queue: "emails" })',
  "q.deadJobs.purge()": 'q.deadJobs.purge({ olderThanMs: 86_400_000 })',
  "q.history()": 'q.history({ queue: "emails", state: "dead", sinceMs: 3_600_000 })',
  "q.waitFor()": "q.waitFor(id, { timeoutMs: 30_000 })",
  "q.enqueueAndWait()": 'q.enqueueAndWait("thumbnails", payload, { timeoutMs: 30_000 })',
  "worker.stop()": "worker.stop({ graceMs: 10_000 })",
};

export type EntryPoint = keyof typeof EXAMPLES;

/** Options may be left out (undefined); anything else but an object is refused. */
export function assertOptionsObject(entryPoint: EntryPoint, options: unknown): void {
  if (options === undefined || (typeof options === "object" && options !== null && !Array.isArray(options))) return;
  throw new ValidationError(
    "INVALID_OPTION",
    `${entryPoint} takes its options as an object, as in ${EXAMPLES[entryPoint]} (got ${kindOf(options)})`,
  );
}

export function assertOpen(closed: boolean, method: string): void {
  if (closed) throw new ClientClosedError(method);
}

// Never the value itself: a string given to connect() may be a URL with a password in it.
function kindOf(value: unknown): string {
  if (value === null) return "null";
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
