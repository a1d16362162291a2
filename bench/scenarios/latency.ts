// Latency: an idle worker; one job at a time, from the moment its enqueue has committed (the
// call returned) to the moment its handler starts. Samples are spaced so the worker is idle.
import { now, sleep } from "../clock.js";
import { quantile } from "../stats.js";
import type { Scenario } from "./scenario.js";

const WARM_UP = 10;
const SPACING_MS = 8;
/** Long enough for a peer that only polls (every 2 s by default) to be counted, not lost. */
const SAMPLE_BOUND_MS = 5000;

export const latency: Scenario = {
  id: "latency",
  metrics: [
    { key: "p50", label: "idle worker, enqueue commit -> handler start, p50", unit: "ms", better: "lower" },
    { key: "p99", label: "idle worker, enqueue commit -> handler start, p99", unit: "ms", better: "lower" },
  ],
  async run({ conn, quick }) {
    const samples = quick ? 60 : 300;
    const started = new Map<number, number>();
    let waiting: { i: number; resolve: () => void } | undefined;
    const worker = await conn.startWorker("standard", ({ i }) => {
      started.set(i, now());
      if (waiting?.i === i) waiting.resolve();
    });
    const latencies: number[] = [];
    try {
      for (let i = 0; i < WARM_UP + samples; i++) {
        const handled = new Promise<void>((resolve) => (waiting = { i, resolve }));
        await conn.enqueueOne({ i });
        const committed = now();
        await Promise.race([handled, sleep(SAMPLE_BOUND_MS)]);
        // A handler may start a hair before the enqueue's reply arrives: that counts as 0.
        const ms = Math.max(0, (started.get(i) ?? now()) - committed);
        if (i >= WARM_UP) latencies.push(ms);
        await sleep(SPACING_MS);
      }
    } finally {
      await worker.stop();
    }
    return { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
  },
};
