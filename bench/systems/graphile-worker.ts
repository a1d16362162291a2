// graphile-worker 0.18, configured as its docs recommend (worker.graphile.org/docs/performance
// for the tuned profile, whose settings are those of its published performance run).
import { Logger, makeWorkerUtils, run, runMigrations, type RunnerOptions } from "graphile-worker";
import pg from "pg";
import { QUEUE, STANDARD_CONCURRENCY, type BenchPayload, type Profile, type System } from "./system.js";

const silent = new Logger(() => () => {});

// maxPoolSize becomes the size of the pool we hand graphile-worker (the docs: "10 or
// concurrentJobs + 2, whichever is larger").
const profiles: Record<Profile, Partial<RunnerOptions> & { maxPoolSize: number }> = {
  standard: { concurrency: STANDARD_CONCURRENCY, maxPoolSize: STANDARD_CONCURRENCY + 2 },
  tuned: {
    concurrency: 24,
    maxPoolSize: 25,
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  },
};

// Our own pools, so that a connection ended when its database is dropped is an "error" event
// we handle rather than one that crashes the process.
function pool(url: string, max: number): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max });
  p.on("error", () => {});
  p.on("connect", (client) => client.on("error", () => {}));
  return p;
}

export const graphileWorkerSystem: System = {
  name: "graphile-worker",
  jobTables: { schema: "graphile_worker", relname: /^_private_jobs$/ },
  settings: {
    standard: `run({ concurrency: ${STANDARD_CONCURRENCY}, maxPoolSize: ${STANDARD_CONCURRENCY + 2} }), defaults otherwise (pollInterval 2000, preparedStatements on, LISTEN/NOTIFY); enqueue: addJob() / addJobs()`,
    tuned: "concurrency 24, maxPoolSize 25, localQueue { size: 500 }, completeJobBatchDelay 0, failJobBatchDelay 0 (the docs' performance configuration)",
  },
  async install(url) {
    await runMigrations({ connectionString: url, logger: silent });
  },
  async connect(url) {
    const utilsPool = pool(url, 10);
    const utils = await makeWorkerUtils({ pgPool: utilsPool, logger: silent });
    return {
      async enqueueOne(payload) {
        await utils.addJob(QUEUE, payload);
      },
      async enqueueBatch(payloads) {
        await utils.addJobs(payloads.map((payload) => ({ identifier: QUEUE, payload })));
      },
      async startWorker(profile, onJob) {
        const workerPool = pool(url, profiles[profile].maxPoolSize);
        const runner = await run({
          pgPool: workerPool,
          logger: silent,
          noHandleSignals: true,
          taskList: { [QUEUE]: async (payload) => onJob(payload as BenchPayload) },
          ...profiles[profile],
        });
        return {
          async stop() {
            await runner.stop();
            await workerPool.end();
          },
        };
      },
      async remaining() {
        const rows = await utils.withPgClient((c) => c.query<{ n: number }>("select count(*)::int as n from graphile_worker.jobs"));
        return rows.rows[0]!.n;
      },
      async close() {
        await utils.release();
        await utilsPool.end();
      },
    };
  },
};
