// Per-queue settings (pgq.queues, migration 000008): pause, flow-control limits, retention and
// a default expiry. They live in the database, so every worker in every process sees a change
// at its next claim, and they survive restarts. A queue without a row has the defaults.
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";
import { announceRequeued } from "../sql/release.js";
import { ValidationError } from "../errors.js";
import type { QueueSettings, RateLimit } from "../types.js";
import { assertInteger, assertQueueName } from "../validate.js";

/** How long a finished job stays in history when its queue sets nothing. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
const MAX_MS = Number.MAX_SAFE_INTEGER;

interface QueueRow {
  queue: string;
  paused: boolean;
  concurrency: number | null;
  key_concurrency: number | null;
  rate_count: number | null;
  rate_per_ms: number | null;
  key_rate_count: number | null;
  key_rate_per_ms: number | null;
  retention_ms: string | null;
  ttl_ms: string | null;
  updated_at: Date;
}

/** A queue's settings as stored; a limit of null means none. */
export interface QueueConfig {
  queue: string;
  paused: boolean;
  concurrency: number | null;
  keyConcurrency: number | null;
  rateLimit: RateLimit | null;
  keyRateLimit: RateLimit | null;
  retentionMs: number;
  ttlMs: number | null;
  updatedAt: Date | null;
}

const SETTINGS: readonly (keyof QueueSettings)[] = ["paused", "concurrency", "keyConcurrency", "rateLimit", "keyRateLimit", "retentionMs", "ttlMs"];

/**
 * Checks what q.setQueue() was given, before any SQL. A key left out keeps its current value;
 * null clears a limit (or, for retentionMs and ttlMs, goes back to the default).
 */
export function prepareQueueSettings(queue: unknown, settings: unknown): { queue: string; set: Map<string, unknown> } {
  assertQueueName(queue);
  if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
    throw new ValidationError("INVALID_OPTION", 'q.setQueue() takes its settings as an object, as in q.setQueue("emails", { concurrency: 5 })');
  }
  const given = settings as Record<string, unknown>;
  const unknownKeys = Object.keys(given).filter((k) => !SETTINGS.includes(k as keyof QueueSettings));
  if (unknownKeys.length > 0) {
    throw new ValidationError("INVALID_OPTION", `q.setQueue() does not know ${unknownKeys.map((k) => JSON.stringify(k)).join(", ")}; it takes ${SETTINGS.join(", ")}`);
  }
  const set = new Map<string, unknown>();
  const limit = (key: string, column: string) => {
    if (!(key in given)) return;
    const value = given[key];
    if (value !== null) assertInteger(value, key, 1);
    set.set(column, value);
  };
  const rate = (key: string, count: string, perMs: string) => {
    if (!(key in given)) return;
    const value = given[key] as RateLimit | null;
    if (value !== null) {
      if (typeof value !== "object") throw new ValidationError("INVALID_OPTION", `${key} must be { count, perMs }, as in { count: 100, perMs: 60000 }, or null`);
      assertInteger(value.count, `${key}.count`, 1);
      assertInteger(value.perMs, `${key}.perMs`, 1);
    }
    set.set(count, value?.count ?? null);
    set.set(perMs, value?.perMs ?? null);
  };
  const duration = (key: string, column: string, min: number) => {
    if (!(key in given)) return;
    const value = given[key];
    if (value !== null) assertInteger(value, key, min, MAX_MS);
    set.set(column, value);
  };
  if ("paused" in given) {
    if (typeof given.paused !== "boolean") throw new ValidationError("INVALID_OPTION", "paused must be true or false");
    set.set("paused", given.paused);
  }
  limit("concurrency", "concurrency");
  limit("keyConcurrency", "key_concurrency");
  rate("rateLimit", "rate_count", "rate_per_ms");
  rate("keyRateLimit", "key_rate_count", "key_rate_per_ms");
  duration("retentionMs", "retention_ms", 0);
  duration("ttlMs", "ttl_ms", 1);
  return { queue, set };
}

/** Creates or updates the queue's row with the given settings; returns them all. */
export async function setQueue(sql: Sql, t: Tables, queue: string, set: Map<string, unknown>): Promise<QueueConfig> {
  if (set.size === 0) return getQueue(sql, t, queue);
  const columns = [...set.keys()];
  const row = Object.fromEntries(set);
  const [stored] = await sql<QueueRow[]>`
    insert into ${t.queues} ${sql({ ...row, queue } as never, "queue", ...columns)}
    on conflict (queue) do update
    set ${sql(row as never, ...columns)}, updated_at = now()
    returning *`;
  // A resumed queue's waiting jobs must not wait for a poll: wake its workers as an enqueue does, from the head (claim-bounds.ts).
  if (set.get("paused") === false) await announceRequeued(sql, t, [queue]);
  return config(stored!);
}

export async function getQueue(sql: Sql, t: Tables, queue: unknown): Promise<QueueConfig> {
  assertQueueName(queue);
  const [row] = await sql<QueueRow[]>`select * from ${t.queues} where queue = ${queue}`;
  return row ? config(row) : defaults(queue);
}

/** Every queue that has settings of its own. */
export async function listQueues(sql: Sql, t: Tables): Promise<QueueConfig[]> {
  const rows = await sql<QueueRow[]>`select * from ${t.queues} order by queue`;
  return rows.map(config);
}

function defaults(queue: string): QueueConfig {
  return {
    queue, paused: false, concurrency: null, keyConcurrency: null, rateLimit: null, keyRateLimit: null,
    retentionMs: DEFAULT_RETENTION_MS, ttlMs: null, updatedAt: null,
  };
}

function config(r: QueueRow): QueueConfig {
  const rateOf = (count: number | null, perMs: number | null) => (count === null || perMs === null ? null : { count, perMs });
  return {
    queue: r.queue,
    paused: r.paused,
    concurrency: r.concurrency,
    keyConcurrency: r.key_concurrency,
    rateLimit: rateOf(r.rate_count, r.rate_per_ms),
    keyRateLimit: rateOf(r.key_rate_count, r.key_rate_per_ms),
    retentionMs: r.retention_ms === null ? DEFAULT_RETENTION_MS : Number(r.retention_ms),
    ttlMs: r.ttl_ms === null ? null : Number(r.ttl_ms),
    updatedAt: r.updated_at,
  };
}
