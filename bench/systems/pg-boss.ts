// pg-boss 12, with LISTEN/NOTIFY on (useListenNotify and the queue's notify option, which its
// docs give as the way to wake workers at once instead of on the 2 s poll).
import { PgBoss, type WorkOptions } from "pg-boss";
import { QUEUE, STANDARD_CONCURRENCY, type BenchPayload, type Profile, type System } from "./system.js";

// pg-boss 12 waits out the polling interval after every fetch (30 s with NOTIFY on, 2 s without)
// unless a "burst" trigger holds, and burstWhenBatchFull is ignored at batchSize 1: so the obvious
// { localConcurrency: 16, batchSize: 1 } drains a backlog at about one job per worker per poll
// (we measured 0.56 jobs/s). Sixteen jobs in flight is therefore one worker fetching batches of
// 16, which its docs give as the way to fetch continuously while work is waiting.
const profiles: Record<Profile, WorkOptions> = {
  standard: { localConcurrency: 1, batchSize: STANDARD_CONCURRENCY, burstWhenBatchFull: true },
  // Bigger batches cut the fetch and complete statements per job further.
  tuned: { localConcurrency: 4, batchSize: 250, burstWhenBatchFull: true },
};

function boss(url: string): PgBoss {
  const instance = new PgBoss({ connectionString: url, useListenNotify: true });
  instance.on("error", (error) => console.error(`pg-boss: ${error.message}`));
  return instance;
}

export const pgBossSystem: System = {
  name: "pg-boss",
  // pgboss.job is partitioned: job_common and a table per partitioned queue (j<hash>).
  jobTables: { schema: "pgboss", relname: /^j/ },
  settings: {
    standard: `new PgBoss({ useListenNotify: true }), createQueue(name, { notify: true }), work(name, ${JSON.stringify(profiles.standard)}); enqueue: send() / insert()`,
    tuned: `work(name, ${JSON.stringify(profiles.tuned)}) (the handler gets a batch and runs each job)`,
  },
  async install(url) {
    const b = boss(url);
    await b.start();
    try {
      await b.createQueue(QUEUE, { notify: true });
    } finally {
      await b.stop({ graceful: false });
    }
  },
  async connect(url) {
    const b = boss(url);
    await b.start();
    return {
      async enqueueOne(payload) {
        await b.send(QUEUE, payload);
      },
      async enqueueBatch(payloads) {
        await b.insert(QUEUE, payloads.map((data) => ({ data })));
      },
      async startWorker(profile, onJob) {
        const id = await b.work<BenchPayload>(QUEUE, profiles[profile], async (jobs) => {
          // The batch's jobs run concurrently, as 16 slots would; pg-boss completes them together.
          await Promise.all(jobs.map(async (job) => onJob(job.data)));
        });
        return { stop: () => b.offWork(QUEUE, { id, wait: true }) };
      },
      async remaining() {
        const jobs = await b.findJobs(QUEUE, { queued: true, limit: 100_000 });
        return jobs.length;
      },
      close: () => b.stop({ graceful: true, timeout: 5000 }),
    };
  },
};
