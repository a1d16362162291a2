// The gauges of jobs by queue and state, and each queue's oldest ready age, counted by one process
// for all (migration 000014). They describe the whole database, so every process scraped would
// otherwise run the same counts: n processes, n times the work, for the same numbers.
//
// A process that needs them reads the last reading from pgq.queue_gauges. If it is older than
// QUEUE_GAUGES_MAX_AGE_MS, the process tries a transaction-scoped advisory lock: the one that
// takes it counts (inspect's bounded counts, in the same transaction) and rewrites the row, and
// the others go on with the reading they found rather than wait. No process is leader for longer
// than one refresh, so none has to be elected, watched or replaced; the row is rewritten at most
// once per period across every process, and only while something scrapes.
import type { Sql, TransactionSql } from "postgres";
import { inspectWithin } from "../admin/inspect.js";
import type { Tables } from "../db/tables.js";
import { transaction } from "../db/transaction.js";
import type { QueueStats } from "../types.js";

export const QUEUE_GAUGES_MAX_AGE_MS = 5_000;

export type QueueGauge = Pick<QueueStats, "queue" | "ready" | "scheduled" | "running" | "retrying" | "dead" | "oldestReadyAgeMs">;

export interface GaugeReading {
  queues: QueueGauge[];
  /** How old the reading was when read, by the database's clock. */
  ageMs: number;
}

/** The last reading, first refreshed by this process if it is stale and no other is refreshing it; undefined before the first. */
export function readQueueGauges(sql: Sql, t: Tables): Promise<GaugeReading | undefined> {
  return transaction(sql, async (tx) => {
    const found = await stored(tx, t);
    if (found && found.ageMs < QUEUE_GAUGES_MAX_AGE_MS) return found;
    const [lock] = await tx<{ taken: boolean }[]>`
      select pg_try_advisory_xact_lock(hashtext('pgq queue gauges'), hashtext(${t.schema})) as taken`;
    if (!lock!.taken) return found;
    // The last refresher may have committed between the read above and the lock: a new statement sees it.
    const again = await stored(tx, t);
    if (again && again.ageMs < QUEUE_GAUGES_MAX_AGE_MS) return again;
    const { queues } = await inspectWithin(tx, t);
    const reading = queues.map(({ queue, ready, scheduled, running, retrying, dead, oldestReadyAgeMs }) =>
      ({ queue, ready, scheduled, running, retrying, dead, oldestReadyAgeMs }));
    await tx`
      insert into ${t.queueGauges} (taken_at, queues) values (now(), ${tx.json(reading)})
      on conflict (single) do update set taken_at = excluded.taken_at, queues = excluded.queues`;
    return { queues: reading, ageMs: 0 };
  });
}

async function stored(tx: TransactionSql, t: Tables): Promise<GaugeReading | undefined> {
  const [row] = await tx<{ queues: QueueGauge[]; age_ms: number }[]>`
    select queues, extract(epoch from clock_timestamp() - taken_at)::float8 * 1000 as age_ms from ${t.queueGauges}`;
  return row && { queues: row.queues, ageMs: row.age_ms };
}
