// The overview's "last hour" chart: completed and failed jobs per minute, per queue.
//
// pgq keeps no finished jobs yet, so there is nothing to count: inspect() says so with
// completedLastMinute: null, and the chart reads "history not available". When job history lands
// and inspect() fills those counts, this records one sample per queue per minute while the
// dashboard runs, and the chart draws itself; a history query over the last hour replaces it.
import type { Inspection } from "../admin/inspect.js";

export interface ThroughputPoint {
  /** The minute, as epoch milliseconds. */
  minute: number;
  completed: number;
  failed: number;
}

const MINUTES = 60;

export class ThroughputHistory {
  readonly #byQueue = new Map<string, ThroughputPoint[]>();

  record(inspection: Inspection): void {
    const minute = Math.floor(inspection.at.getTime() / 60_000) * 60_000;
    for (const q of inspection.queues) {
      if (q.completedLastMinute === null || q.failedLastMinute === null) continue;
      const points = this.#byQueue.get(q.queue) ?? [];
      const point = { minute, completed: q.completedLastMinute, failed: q.failedLastMinute };
      // The last sample within a minute counts the whole minute that just passed.
      if (points.at(-1)?.minute === minute) points[points.length - 1] = point;
      else points.push(point);
      this.#byQueue.set(q.queue, points.filter((p) => p.minute > minute - MINUTES * 60_000));
    }
  }

  /** undefined: no history to draw from. */
  points(queue: string): ThroughputPoint[] | undefined {
    return this.#byQueue.get(queue);
  }
}
