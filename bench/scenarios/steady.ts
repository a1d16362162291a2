// Steady load: a producer enqueues one job per call at a fixed rate while a worker runs in the
// same process; how many jobs per second get handled, and whether the backlog grows.
import { now, sleep } from "../clock.js";
import type { Scenario } from "./scenario.js";

const RATE = 2000;
const TICK_MS = 10;
/** Enqueue calls in flight at most; past it the producer falls behind, and we report that. */
const MAX_IN_FLIGHT = 64;

export const steady: Scenario = {
  id: "steady",
  metrics: [
    { key: "handled", label: `producer at ${RATE} jobs/s with a worker running: handled`, unit: "jobs/s", better: "higher" },
    { key: "produced", label: `producer at ${RATE} jobs/s: actually enqueued`, unit: "jobs/s", better: "higher" },
    { key: "backlog", label: `producer at ${RATE} jobs/s: backlog at the end`, unit: "jobs", better: "lower" },
  ],
  async run({ conn, quick }) {
    const ms = quick ? 4000 : 10_000;
    let handled = 0;
    const worker = await conn.startWorker("standard", () => handled++);
    let sent = 0;
    let inFlight = 0;
    const enqueues = new Set<Promise<void>>();
    const start = now();
    try {
      for (let elapsed = 0; elapsed < ms; elapsed = now() - start) {
        const due = Math.floor((elapsed / 1000) * RATE) - sent;
        for (let k = 0; k < due && inFlight < MAX_IN_FLIGHT; k++) {
          inFlight++;
          const call = conn.enqueueOne({ i: sent++ }).finally(() => {
            inFlight--;
            enqueues.delete(call);
          });
          enqueues.add(call);
        }
        await sleep(TICK_MS);
      }
      const seconds = (now() - start) / 1000;
      const result = { handled: handled / seconds, produced: sent / seconds, backlog: sent - handled };
      await Promise.all(enqueues);
      return result;
    } finally {
      await worker.stop();
    }
  },
};
