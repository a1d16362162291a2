// Jobs finished per minute, per queue, from pgq.history: the dashboard's "last hour" chart.
//
// Bounded however busy a queue is: each (queue, minute) is one descent of history_queue (queue,
// finished_at) include (state), newest first within the minute, that stops after SAMPLE rows,
// read from the index alone. A minute with fewer rows is counted exactly; a fuller one is
// extrapolated from the stretch of the minute its SAMPLE newest rows cover, on the assumption
// that the rate held through the minute, and flagged as estimated. An hour of five queues is
// then at most 60 * 5 * SAMPLE index entries, whatever the table holds.
import type { Sql } from "postgres";
import { operatorRead } from "../db/operator-read.js";
import { tables } from "../db/tables.js";
import { ValidationError } from "../errors.js";
import { assertInteger, assertQueueName } from "../validate.js";

/** Rows read per queue and minute before extrapolating: ±20% or so on a full minute's count. */
export const SAMPLE = 25;

export interface ThroughputPoint {
  /** The minute's start. */
  minute: Date;
  /** Jobs completed, and jobs that died (failed on their last attempt), in that minute. */
  completed: number;
  failed: number;
  /** Extrapolated from SAMPLE rows rather than counted. */
  estimated: boolean;
}

export interface Throughput {
  /** The database's time when the counts were taken. */
  at: Date;
  /** Per queue, one point per minute, oldest first, the current (unfinished) minute last. */
  queues: Map<string, ThroughputPoint[]>;
}

export interface ThroughputRequest {
  queue: string;
  /** Minutes to read, 1 to 60, ending with the current one, or with the one before `before`. */
  minutes: number;
  /** A minute's start: read the minutes before it (a stretch of the past, whatever the clocks say). */
  before?: Date;
}

interface Row {
  queue: string;
  minute: Date;
  n: number;
  completed: number;
  failed: number;
  /** Ms of the minute (up to now, for the current one) and ms that the rows read cover. */
  window_ms: number;
  covered_ms: number | null;
  at: Date;
}

export async function readThroughput(sql: Sql, schema: string, requests: ThroughputRequest[]): Promise<Throughput> {
  for (const r of requests) {
    assertQueueName(r.queue);
    assertInteger(r.minutes, "minutes", 1, 60);
    if (r.before !== undefined && r.before.getTime() % 60_000 !== 0) throw new ValidationError("INVALID_OPTION", "before is the start of a minute");
  }
  const t = tables(sql, schema);
  return operatorRead(sql, async (tx) => {
    const rows = await tx<Row[]>`
      select q.queue, m.minute, s.n, s.completed, s.failed, now() as at,
             extract(epoch from least(m.minute + interval '1 minute', now()) - m.minute)::float8 * 1000 as window_ms,
             extract(epoch from least(m.minute + interval '1 minute', now()) - s.oldest)::float8 * 1000 as covered_ms
      from unnest(${requests.map((r) => r.queue)}::text[], ${requests.map((r) => r.minutes)}::int[],
                  ${requests.map((r) => r.before?.toISOString() ?? null)}::text[]) q(queue, minutes, before)
      cross join lateral (select coalesce(q.before::timestamptz - interval '1 minute', date_trunc('minute', now())) as minute) last
      cross join lateral generate_series(last.minute - (q.minutes - 1) * interval '1 minute', last.minute, interval '1 minute') m(minute)
      cross join lateral (
        select count(*)::int as n,
               (count(*) filter (where h.state = 'completed'))::int as completed,
               (count(*) filter (where h.state = 'dead'))::int as failed,
               min(h.finished_at) as oldest
        from (
          select h.state, h.finished_at from ${t.history} h
          where h.queue = q.queue and h.finished_at >= m.minute and h.finished_at < least(m.minute + interval '1 minute', now())
          order by h.finished_at desc limit ${SAMPLE}) h
      ) s
      order by q.queue, m.minute`;
    const at = rows[0]?.at ?? (await tx<{ now: Date }[]>`select now()`)[0]!.now;
    // A queue asked for twice (the last minutes, and a stretch before them) gets both, in minute order.
    const queues = new Map<string, ThroughputPoint[]>(requests.map((r) => [r.queue, []]));
    for (const row of rows) {
      const estimated = row.n >= SAMPLE && row.covered_ms !== null && row.covered_ms < row.window_ms;
      const scale = estimated ? row.window_ms / Math.max(1, row.covered_ms!) : 1;
      queues.get(row.queue)!.push({
        minute: row.minute,
        completed: Math.round(row.completed * scale),
        failed: Math.round(row.failed * scale),
        estimated,
      });
    }
    return { at, queues };
  });
}
