// The overview's "last hour" chart: completed and failed jobs per minute, per queue, read from
// pgq.history by readThroughput() (src/admin/throughput.ts).
//
// A minute gets no more rows once it is over (a finished job's finished_at is the time of the
// statement that finished it), so the chart keeps each minute that ended more than a minute ago
// and never reads it again: a queue's first look reads the hour, every refresh after it the last
// few minutes, however many tabs are open and however busy the queue is.
import type { Sql } from "postgres";
import { readThroughput, type ThroughputPoint } from "../admin/throughput.js";

const HOUR_MINUTES = 60;
/** Past its end by this much, a minute's rows are all committed: the finishing statement's own time is the row's. */
const FINAL_AFTER_MS = 60_000;

export class ThroughputChart {
  /** Per queue, the minutes known final, oldest first. */
  readonly #final = new Map<string, ThroughputPoint[]>();
  /** The database's time at the last read, and performance.now() then: where "now" is, without reading it. */
  #clock: { db: number; local: number } | undefined;

  constructor(readonly sql: Sql, readonly schema: string) {}

  /** The last hour of each queue, one point per minute, oldest first. */
  async read(queues: string[]): Promise<Map<string, ThroughputPoint[]>> {
    if (queues.length === 0) return new Map();
    const now = this.#clock ? this.#clock.db + performance.now() - this.#clock.local : undefined;
    const requests = queues.map((queue) => ({ queue, minutes: this.#minutesToRead(queue, now) }));
    const { at, queues: read } = await readThroughput(this.sql, this.schema, requests);
    this.#clock = { db: at.getTime(), local: performance.now() };
    const hourAgo = Math.floor(at.getTime() / 60_000) * 60_000 - (HOUR_MINUTES - 1) * 60_000;
    const out = new Map<string, ThroughputPoint[]>();
    for (const queue of queues) {
      const fresh = read.get(queue) ?? [];
      const first = fresh[0]?.minute.getTime() ?? Infinity;
      const kept = (this.#final.get(queue) ?? []).filter((p) => p.minute.getTime() >= hourAgo && p.minute.getTime() < first);
      const points = [...kept, ...fresh];
      this.#final.set(queue, points.filter((p) => p.minute.getTime() + 60_000 + FINAL_AFTER_MS <= at.getTime()));
      out.set(queue, points);
    }
    return out;
  }

  /** Forgets the queues that are gone. */
  retain(queues: string[]): void {
    const keep = new Set(queues);
    for (const queue of this.#final.keys()) if (!keep.has(queue)) this.#final.delete(queue);
  }

  /** From the minute after the last final one to the current one, or the whole hour. */
  #minutesToRead(queue: string, now: number | undefined): number {
    const last = this.#final.get(queue)?.at(-1);
    if (!last || now === undefined) return HOUR_MINUTES;
    const missing = Math.floor(now / 60_000) - last.minute.getTime() / 60_000;
    // One more than the clock says: the database's clock and ours may disagree at a minute's edge.
    return Math.min(HOUR_MINUTES, Math.max(1, missing + 1));
  }
}
