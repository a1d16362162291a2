// pgq pause | resume | queue set | queue list: per-queue settings, stored in the database and
// read by every worker at its next claim.
import { InvalidArgumentError } from "commander";
import type { QueueConfig } from "../admin/queues.js";
import type { QueueSettings, RateLimit } from "../types.js";
import { age, count, table } from "./format.js";
import { duration, integer } from "./options.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";

/** "none" clears a limit and "default" restores a default: commander keeps no null from a parser. */
type Cleared = "none" | "default";

export interface QueueSetOptions {
  concurrency?: number | Cleared;
  keyConcurrency?: number | Cleared;
  rate?: RateLimit | Cleared;
  keyRate?: RateLimit | Cleared;
  retention?: number | Cleared;
  ttl?: number | Cleared;
}

export async function pauseCommand(queue: string, paused: boolean, globals: GlobalOptions): Promise<void> {
  await withSession(globals, createLogger(globals, "warn"), ({ q }) => (paused ? q.pause(queue) : q.resume(queue)));
  console.log(paused ? `paused ${queue}: no worker claims from it; running jobs finish, enqueue still works` : `resumed ${queue}`);
}

export async function queueSetCommand(queue: string, options: QueueSetOptions, globals: GlobalOptions): Promise<void> {
  const given = { concurrency: options.concurrency, keyConcurrency: options.keyConcurrency, rateLimit: options.rate,
    keyRateLimit: options.keyRate, retentionMs: options.retention, ttlMs: options.ttl };
  const settings = Object.fromEntries(
    Object.entries(given).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v === "none" || v === "default" ? null : v]),
  ) as QueueSettings;
  const config = await withSession(globals, createLogger(globals, "warn"), ({ q }) => q.setQueue(queue, settings));
  console.log(renderQueues([config]));
}

export async function queueListCommand(options: { json?: boolean }, globals: GlobalOptions): Promise<void> {
  const queues = await withSession(globals, createLogger(globals, "warn"), ({ q }) => q.queues());
  console.log(options.json ? JSON.stringify(queues) : queues.length === 0 ? "no queue has settings of its own" : renderQueues(queues));
}

function renderQueues(queues: QueueConfig[]): string {
  const limit = (n: number | null) => (n === null ? "-" : count(n));
  const rate = (r: RateLimit | null) => (r === null ? "-" : `${count(r.count)}/${age(r.perMs)}`);
  return table(
    ["QUEUE", "PAUSED", "CONCURRENCY", "PER KEY", "RATE", "RATE PER KEY", "RETENTION", "TTL"],
    queues.map((c) => [
      c.queue, c.paused ? "yes" : "no", limit(c.concurrency), limit(c.keyConcurrency), rate(c.rateLimit),
      rate(c.keyRateLimit), age(c.retentionMs), c.ttlMs === null ? "-" : age(c.ttlMs),
    ]),
    [0],
  );
}

/** A limit: a positive integer, or "none" to clear it. */
export function limitOrNone(value: string): number | "none" {
  if (value.trim() === "none") return "none";
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || Number(value) > 2 ** 31 - 1) {
    throw new InvalidArgumentError('it must be a positive integer, or "none".');
  }
  return Number(value);
}

/** A rate: COUNT/DURATION such as 100/1m or 10/1s, or "none". */
export function rateOrNone(value: string): RateLimit | "none" {
  if (value.trim() === "none") return "none";
  const [n, per, ...rest] = value.trim().split("/");
  if (per === undefined || rest.length > 0) throw new InvalidArgumentError('it must be COUNT/DURATION, such as 100/1m or 10/1s, or "none".');
  return { count: integer(1)(n!), perMs: duration({ bareMs: true })(per) };
}

/** A duration (30s, 7d), or "default" to go back to the default. */
export function durationOrDefault(value: string): number | "default" {
  return value.trim() === "default" ? "default" : duration({ bareMs: false })(value);
}
