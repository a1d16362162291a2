// Enqueue throughput: one job per call from concurrent callers, and batches from one caller.
import { now } from "../clock.js";
import { payloads, type Scenario } from "./scenario.js";

const CALLERS = 16;
const BATCH = 1000;

export const enqueueOne: Scenario = {
  id: "enqueue-one",
  metrics: [{ key: "rate", label: `enqueue, 1 job per call, ${CALLERS} concurrent callers`, unit: "jobs/s", better: "higher" }],
  async run({ conn, quick }) {
    const ms = quick ? 1500 : 4000;
    // Warm the pool's connections (and prepared statements) before the clock starts.
    await Promise.all(payloads(CALLERS).map((p) => conn.enqueueOne(p)));
    let sent = 0;
    const start = now();
    const deadline = start + ms;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (now() < deadline) await conn.enqueueOne({ i: sent++ });
      }),
    );
    return { rate: sent / ((now() - start) / 1000) };
  },
};

export const enqueueBatch: Scenario = {
  id: "enqueue-batch",
  metrics: [{ key: "rate", label: `enqueue, batches of ${BATCH}`, unit: "jobs/s", better: "higher" }],
  async run({ conn, quick }) {
    const batches = quick ? 10 : 40;
    const deadline = now() + 30_000;
    await conn.enqueueBatch(payloads(BATCH));
    let sent = 0;
    const start = now();
    for (let b = 0; b < batches && now() < deadline; b++) {
      await conn.enqueueBatch(payloads(BATCH, sent));
      sent += BATCH;
    }
    return { rate: sent / ((now() - start) / 1000) };
  },
};
