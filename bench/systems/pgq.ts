// pgq itself, in each processing mode. Imported from src/ so that the benchmark measures the
// working tree, not the last build.
import { connect } from "../../src/index.js";
import type { WorkOptions } from "../../src/types.js";
import { QUEUE, STANDARD_CONCURRENCY, type BenchPayload, type Profile, type System } from "./system.js";

// Lease mode completes in batches and needs no connection per slot, so it takes far more
// concurrency than transaction mode, which holds a connection (and a transaction) per job:
// 1000 (the most pgq allows) drained about 15% faster than 256 here.
const TUNED_CONCURRENCY = { transaction: 32, lease: 1000 } as const;

export function pgqSystem(mode: "transaction" | "lease"): System {
  const options: Record<Profile, WorkOptions> = {
    standard: { mode, concurrency: STANDARD_CONCURRENCY },
    tuned: { mode, concurrency: TUNED_CONCURRENCY[mode] },
  };
  return {
    name: `pgq ${mode}`,
    jobTables: { schema: "pgq", relname: /^jobs$/ },
    settings: {
      standard: `q.work(queue, handler, { mode: "${mode}", concurrency: ${STANDARD_CONCURRENCY} }); enqueue: q.enqueue() / q.enqueueMany()`,
      tuned: `{ mode: "${mode}", concurrency: ${TUNED_CONCURRENCY[mode]} } (pgq has no other throughput options)`,
    },
    async install(url) {
      const q = await connect({ databaseUrl: url });
      try {
        await q.migrate();
      } finally {
        await q.close();
      }
    },
    async connect(url) {
      const q = await connect({ databaseUrl: url });
      return {
        async enqueueOne(payload) {
          await q.enqueue(QUEUE, payload);
        },
        async enqueueBatch(payloads) {
          await q.enqueueMany(QUEUE, payloads);
        },
        async startWorker(profile, onJob) {
          const worker = q.work(QUEUE, (job) => onJob(job.payload as BenchPayload), options[profile]);
          await worker.ready;
          return { stop: () => worker.stop() };
        },
        async remaining() {
          const [row] = await q.sql<{ n: number }[]>`select count(*)::int as n from pgq.jobs`;
          return row!.n;
        },
        close: () => q.close(),
      };
    },
  };
}
