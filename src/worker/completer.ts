// The completer settles claimed jobs in the database: completions and failures are batched,
// many per statement (those that arrive while one statement runs go together in the next), and
// jobs a stopping worker did not finish are handed back. Transaction-mode completions are not
// here: they commit inside the job's own transaction (executor.ts).
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { Backoff, sleep } from "../backoff.js";
import { bounded, STATEMENT_BOUND_MS } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import type { Tables } from "../db/tables.js";
import type { ClaimedJob } from "../sql/claim.js";
import { completeJobs } from "../sql/complete.js";
import { failJobs, type Failure, type FailureOutcome } from "../sql/fail.js";
import { releaseJobs } from "../sql/release.js";

const BATCH = 1000;
/** Retrying a failure the database could not take: 250 ms, 500 ms, ... at most 5 s apart. */
const RECORD_RETRY = { baseMs: 250, maxMs: 5_000 };

/** What became of a failed attempt: "unrecorded" when the database stayed away while the lease held. */
export type FailureResult = FailureOutcome["outcome"] | "lease-lost" | "unrecorded";

interface Pending<In, Out> {
  input: In;
  resolve: (out: Out) => void;
  reject: (error: unknown) => void;
}

export class Completer {
  private completions: Pending<{ id: string; token: string; result: string | null }, boolean>[] = [];
  private failures: Pending<Failure, FailureOutcome | undefined>[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly pool: OwnPool,
    private readonly tables: Tables,
    /** Resolves once the worker's marker is held: completions and failures wait for it. */
    private readonly untilMarked: () => Promise<void>,
  ) {}

  /** Moves a finished job to history with its result (serialised JSON); false if its lease was lost. */
  complete(id: string, token: string, result: string | null): Promise<boolean> {
    return this.queue(this.completions, { id, token, result });
  }

  /**
   * Records a failed attempt: the job waits for its retry, or moves to dead_jobs. A failure
   * that coincides with a lost connection (a restart, a failover) is retried until the database
   * answers, for as long as the lease holds (the heartbeat keeps renewing it meanwhile): the
   * job then retries after its backoff instead of waiting for the lease to lapse.
   */
  async fail(failure: Failure, leaseHeldUntil: () => number, log: Logger): Promise<FailureResult> {
    const backoff = new Backoff(RECORD_RETRY);
    for (;;) {
      try {
        const outcome = await this.queue(this.failures, failure);
        return outcome?.outcome ?? "lease-lost";
      } catch (error) {
        const delayMs = backoff.next();
        if (performance.now() + delayMs >= leaseHeldUntil()) {
          log.error({ err: error }, "could not record the failure; the attempt counts when the lease lapses");
          return "unrecorded";
        }
        log.debug({ err: error, retryInMs: delayMs }, "could not record the failure yet; retrying");
        await sleep(delayMs);
      }
    }
  }

  /** Hands jobs back to the queue without spending an attempt: the worker stops, not the job. */
  async release(jobs: ClaimedJob[], log: Logger): Promise<void> {
    if (jobs.length === 0) return;
    try {
      const released = await bounded(
        releaseJobs(this.pool.sql, this.tables, jobs.map((j) => j.id), jobs.map((j) => j.lease_token)),
        STATEMENT_BOUND_MS,
        "releasing jobs",
      );
      log.info({ jobs: jobs.length, released: released.size }, "worker stopping: released unfinished jobs for other workers");
    } catch (error) {
      log.error({ err: error, jobs: jobs.length }, "could not release jobs; they run again when their leases lapse");
    }
  }

  /** Resolves once nothing is waiting to be sent. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private queue<In, Out>(list: Pending<In, Out>[], input: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      list.push({ input, resolve, reject });
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    });
  }

  private async flush(): Promise<void> {
    while (this.completions.length > 0 || this.failures.length > 0) {
      await this.untilMarked();
      await this.send(this.completions.splice(0, BATCH), "completing jobs", async (batch) => {
        const done = await completeJobs(this.pool.sql, this.tables, batch.map((b) => b.id), batch.map((b) => b.token), batch.map((b) => b.result));
        return batch.map((b) => done.has(b.id));
      });
      await this.send(this.failures.splice(0, BATCH), "recording failed attempts", async (batch) => {
        const outcomes = new Map((await failJobs(this.pool.sql, this.tables, batch)).map((o) => [o.id, o]));
        return batch.map((f) => outcomes.get(f.id));
      });
    }
  }

  private async send<In, Out>(batch: Pending<In, Out>[], what: string, statement: (inputs: In[]) => Promise<Out[]>): Promise<void> {
    if (batch.length === 0) return;
    try {
      const results = await bounded(statement(batch.map((b) => b.input)), STATEMENT_BOUND_MS, what);
      batch.forEach((b, i) => b.resolve(results[i] as Out));
    } catch (error) {
      batch.forEach((b) => b.reject(error));
    }
  }
}
