// Steady load: a producer enqueues one job per call at a fixed rate while a worker runs in the
// same process; how many jobs per second get handled, and whether the backlog grows.
import { now, sleep } from "../clock.js";
import { startProducer } from "../producer.js";
import type { Scenario } from "./scenario.js";

const RATE = 2000;

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
    try {
      const start = now();
      const producer = startProducer(conn, RATE);
      await sleep(ms);
      const seconds = (now() - start) / 1000;
      const result = { handled: handled / seconds, produced: producer.sent / seconds, backlog: producer.sent - handled };
      await producer.stop();
      return result;
    } finally {
      await worker.stop();
    }
  },
};
