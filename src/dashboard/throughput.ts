// The overview's "last hour" chart: completed and failed jobs per minute, per queue, read from
// pgq.history by readThroughput() (src/admin/throughput.ts).
//
// A minute gets no more rows once it is over (a finished job's finished_at is the time of the
// statement that finished it), so the chart keeps each minute that ended more than a minute ago
// and never reads it again: a refresh reads the last few minutes, however many tabs are open and
// however busy the queue is. The hour before them is filled in newest first, at most
// BACKFILL_PER_READ queue-minutes per read, shared among the queues: the first load costs about
// what a refresh does, however many queues there are, and the chart is whole a few refreshes
// later (the overview refreshes every two seconds). Until then it says how much of the hour it shows.
import type { Sql } from "postgres";
import { readThroughput, type ThroughputPoint, type ThroughputRequest } from "../admin/throughput.js";

export const HOUR_MINUTES = 60;
/** Minutes before the last ones that one read fills in, over all queues: an hour, so one queue's is whole at once. */
const BACKFILL_PER_READ = 60;
/** A queue whose last final minute is further back than this (no one looked for a while) is read afresh. */
const RESUME_WITHIN_MINUTES = 5;
/** Past its end by this much, a minute's rows are all committed: the finishing statement's own time is the row's. */
const FINAL_AFTER_MS = 60_000;
const MINUTE_MS = 60_000;

export class ThroughputChart {
  /** Per queue, the minutes known final, oldest first, without gaps. */
  readonly #final = new Map<string, ThroughputPoint[]>();
  /** The database's time at the last read, and performance.now() then: where "now" is, without reading it. */
  #clock: { db: number; local: number } | undefined;

  constructor(readonly sql: Sql, readonly schema: string) {}

  /**
   * Each queue's last hour, one point per minute, oldest first, the current minute last: the
   * whole hour (HOUR_MINUTES points), or its newest part while the rest is being filled in.
   */
  async read(queues: string[]): Promise<Map<string, ThroughputPoint[]>> {
    if (queues.length === 0) return new Map();
    const now = this.#clock ? this.#clock.db + performance.now() - this.#clock.local : undefined;
    const { at, queues: read } = await readThroughput(this.sql, this.schema, this.#requests(queues, now));
    this.#clock = { db: at.getTime(), local: performance.now() };
    const hourAgo = Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS - (HOUR_MINUTES - 1) * MINUTE_MS;
    const out = new Map<string, ThroughputPoint[]>();
    for (const queue of queues) {
      // What was just read wins over what was kept: the minute at the edge of the two is read again.
      const byMinute = new Map((this.#final.get(queue) ?? []).map((p) => [p.minute.getTime(), p]));
      for (const p of read.get(queue) ?? []) byMinute.set(p.minute.getTime(), p);
      const points = [...byMinute.values()].filter((p) => p.minute.getTime() >= hourAgo).sort((a, b) => a.minute.getTime() - b.minute.getTime());
      this.#final.set(queue, points.filter((p) => p.minute.getTime() + MINUTE_MS + FINAL_AFTER_MS <= at.getTime()));
      out.set(queue, points);
    }
    return out;
  }

  /** Forgets the queues that are gone. */
  retain(queues: string[]): void {
    const keep = new Set(queues);
    for (const queue of this.#final.keys()) if (!keep.has(queue)) this.#final.delete(queue);
  }

  /**
   * Per queue, the minutes from the one after the last final one to the current one, and a
   * stretch of the hour before its oldest known minute, if any is missing; a queue read for the
   * first time (or not for a while), its share of the backfill ending with the current minute.
   */
  #requests(queues: string[], now: number | undefined): ThroughputRequest[] {
    const share = Math.max(1, Math.floor(BACKFILL_PER_READ / queues.length));
    const requests: ThroughputRequest[] = [];
    for (const queue of queues) {
      const known = this.#final.get(queue) ?? [];
      const oldest = known[0];
      const last = known.at(-1);
      const currentMinute = Math.floor((now ?? 0) / MINUTE_MS);
      if (!oldest || !last || now === undefined || currentMinute - last.minute.getTime() / MINUTE_MS > RESUME_WITHIN_MINUTES) {
        this.#final.delete(queue);
        requests.push({ queue, minutes: share });
        continue;
      }
      // One more than the clock says: the database's clock and ours may disagree at a minute's edge.
      requests.push({ queue, minutes: Math.min(HOUR_MINUTES, Math.max(1, currentMinute - last.minute.getTime() / MINUTE_MS + 1)) });
      const missing = oldest.minute.getTime() / MINUTE_MS - (currentMinute - HOUR_MINUTES + 1);
      if (missing > 0) requests.push({ queue, minutes: Math.min(share, missing), before: oldest.minute });
    }
    return requests;
  }
}
