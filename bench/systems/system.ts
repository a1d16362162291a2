// The one interface every queue under test implements, so that each scenario is written once.

/** What every benchmark job carries: its index in the run, so handlers can be matched to sends. */
export interface BenchPayload {
  i: number;
}

/**
 * "standard": concurrency 16 and the settings each project's docs recommend for ordinary use.
 * "tuned": each project configured for raw throughput as its docs recommend.
 */
export type Profile = "standard" | "tuned";

export interface WorkerHandle {
  /** Stops claiming and waits for in-flight jobs, as a graceful shutdown would. */
  stop(): Promise<void>;
}

/** A system connected to one fresh database. */
export interface Connected {
  enqueueOne(payload: BenchPayload): Promise<void>;
  enqueueBatch(payloads: BenchPayload[]): Promise<void>;
  /** Resolves once the worker is listening; `onJob` runs as each handler starts. */
  startWorker(profile: Profile, onJob: (payload: BenchPayload) => void): Promise<WorkerHandle>;
  /** How many jobs are left unfinished in the database (for the drain's sanity check). */
  remaining(): Promise<number>;
  close(): Promise<void>;
}

export interface System {
  /** The column name in the results table. */
  name: string;
  /** Where its jobs live: the tables whose dead tuples the long-running scenarios report. */
  jobTables: { schema: string; relname: RegExp };
  /** The settings of each profile, for RESULTS.md. */
  settings: Record<Profile, string>;
  /** Installs the system's schema (and queue) into an empty database used as a template. */
  install(url: string): Promise<void>;
  connect(url: string): Promise<Connected>;
}

export const QUEUE = "bench";
export const STANDARD_CONCURRENCY = 16;
