// Enqueue's checks: the queue name, every payload and every option, before any SQL, so that a
// mistake is a ValidationError that names the problem and nothing is written. The insert itself
// is src/sql/insert-jobs.ts.
import { ValidationError } from "./errors.js";
import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "./job-defaults.js";
import type { JobSettings } from "./sql/insert-jobs.js";
import type { EnqueueOptions } from "./types.js";
import { assertDate, assertInteger, assertKey, assertQueueName, MAX_DELAY_MS, serializePayload } from "./validate.js";

/** Checks the queue name, every payload and every option; throws ValidationError before any SQL. */
export function prepareEnqueue(queue: unknown, payloads: unknown[], options: EnqueueOptions, maxPayloadBytes: number) {
  assertQueueName(queue);
  const settings = jobSettings(options);
  const texts = payloads.map((p) => serializePayload(p, maxPayloadBytes));
  return { queue, texts, settings };
}

/** A job's options with every default filled in; throws ValidationError on a bad one. */
export function jobSettings(options: Omit<EnqueueOptions, "tx">): JobSettings {
  if (options === null || typeof options !== "object") {
    throw new ValidationError("INVALID_OPTION", "enqueue options must be an object");
  }
  const { priority = DEFAULT_PRIORITY, maxAttempts = DEFAULT_MAX_ATTEMPTS, backoff = {}, timeoutMs, dedupeKey, groupKey } = options;
  assertInteger(priority, "priority", -(2 ** 31));
  assertInteger(maxAttempts, "maxAttempts", 1);
  const { baseMs = DEFAULT_BACKOFF.baseMs, maxMs = Math.max(DEFAULT_BACKOFF.maxMs, baseMs) } = backoff;
  assertInteger(baseMs, "backoff.baseMs", 0);
  assertInteger(maxMs, "backoff.maxMs", baseMs);
  if (timeoutMs !== undefined) assertInteger(timeoutMs, "timeoutMs", 1);
  if (dedupeKey !== undefined) assertKey(dedupeKey, "dedupeKey");
  if (groupKey !== undefined) assertKey(groupKey, "groupKey");
  if (options.runAt !== undefined && options.delayMs !== undefined) {
    throw new ValidationError("INVALID_OPTION", "give runAt or delayMs, not both");
  }
  if (options.runAt !== undefined) assertDate(options.runAt, "runAt");
  if (options.delayMs !== undefined) assertInteger(options.delayMs, "delayMs", 0, MAX_DELAY_MS);
  if (options.expiresAt !== undefined && options.ttlMs !== undefined) {
    throw new ValidationError("INVALID_OPTION", "give expiresAt or ttlMs, not both");
  }
  if (options.expiresAt !== undefined) assertDate(options.expiresAt, "expiresAt");
  if (options.ttlMs !== undefined) assertInteger(options.ttlMs, "ttlMs", 1, MAX_DELAY_MS);
  return {
    priority,
    runAt: options.runAt ?? null,
    delayMs: options.delayMs ?? 0,
    maxAttempts,
    backoffBaseMs: baseMs,
    backoffMaxMs: maxMs,
    timeoutMs: timeoutMs ?? null,
    dedupeKey: dedupeKey ?? null,
    groupKey: groupKey ?? null,
    // Set by the caller's send span (telemetry/tracing.ts), not an option.
    traceContext: null,
    expiresAt: options.expiresAt ?? null,
    ttlMs: options.ttlMs ?? null,
  };
}
