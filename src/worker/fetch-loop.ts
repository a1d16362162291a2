// The fetch loop: one per worker. It only claims: up to the free slots (and the claim-ahead
// buffer) in one statement, then hands the jobs over and claims again as soon as there is
// room and reason to. It never waits for a batch to finish: each job frees its own slot.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { Backoff } from "../backoff.js";
import { bounded, STATEMENT_BOUND_MS } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import { schemaNotMigratedError } from "../db/schema-errors.js";
import type { Tables } from "../db/tables.js";
import { claimJobs, queuesBehindBounds, type ClaimedJob } from "../sql/claim.js";
import { finishExpired } from "../sql/expire.js";
import { MARGIN_MS, type ClaimBounds } from "./claim-bounds.js";
import type { WorkerSettings } from "./settings.js";
import type { Slots } from "./slots.js";
import type { WakeUp } from "./wake-up.js";

/** While claims fail: 100 ms, 200 ms, ... at most 10 s apart. */
const CLAIM_RETRY = { baseMs: 100, maxMs: 10_000 };
/** How often the claim bounds are audited (claim-bounds.ts): the longest a job behind a bound waits, while notifications are heard. */
const AUDIT_EVERY_MS = 5_000;

export interface FetchLoopDeps {
  settings: WorkerSettings;
  /** Where claims go. */
  pool: OwnPool;
  /** Where statements beside the claims go, out of their way: the audit, finishing expired jobs. */
  asidePool: OwnPool;
  tables: Tables;
  slots: Slots;
  wake: WakeUp;
  bounds: ClaimBounds;
  /** Whether every notification is heard now (LISTEN in place, and proven to deliver): the audit may then look only where one was heard. */
  hearsAll: () => boolean;
  log: Logger;
  /** Jobs were claimed (and are waiting in the slots' buffer). */
  claimed: (jobs: ClaimedJob[]) => void;
  claimFailed: (error: unknown) => void;
}

export class FetchLoop {
  private stopping = false;
  private auditTimer: NodeJS.Timeout | undefined;
  /** Statements run beside the claims (the audit, finishing expired jobs): one of each at a time. */
  private readonly aside = new Set<string>();

  constructor(private readonly deps: FetchLoopDeps) {}

  /** Claims until stop(); `attempted` is called once the first claim has been tried. */
  async run(attempted: () => void): Promise<void> {
    const { settings, pool, tables, slots, wake, bounds, log } = this.deps;
    const failures = new Backoff(CLAIM_RETRY);
    this.auditTimer = setInterval(() => this.runAside("auditing claim bounds", () => this.audit()), AUDIT_EVERY_MS);
    // On start and after each poll: if the claim is short, it also says when the next job is due.
    let askWhenDue = true;
    while (!this.stopping) {
      const startedAt = performance.now();
      const want = slots.wanted(startedAt);
      if (want === 0 || !wake.takeWork()) {
        if (await wake.untilWoken()) askWhenDue = true;
        continue;
      }
      try {
        const marginMs = this.deps.hearsAll() ? MARGIN_MS.hearingAll : MARGIN_MS.missingSome;
        const request = { queues: settings.queues, bounds: bounds.forClaim(), limit: want, worker: settings.name, leaseMs: settings.leaseMs, nextDue: askWhenDue, marginMs };
        const claim = await bounded(claimJobs(pool.sql, tables, request), STATEMENT_BOUND_MS, "claiming jobs");
        const { jobs, full, nextSlotInMs, nextDueInMs } = claim;
        bounds.claimed(claim.bounds);
        if (claim.expiredAhead) this.runAside("finishing expired jobs", () => finishExpired(this.deps.asidePool.sql, tables, log));
        if (failures.reset()) log.info("claiming works again");
        // A full batch suggests more is waiting: claim again as soon as a slot frees.
        if (jobs.length === want) wake.more();
        // A queue's limit held the claim back: its room comes back when a job of the queue
        // finishes (ours, or at another worker's, which we see at the poll) or when the rate
        // window moves on, not by claiming again now.
        else if (full) wake.whenSlotFrees();
        if (nextSlotInMs !== null) wake.in(nextSlotInMs);
        if (nextDueInMs !== null) wake.in(nextDueInMs);
        slots.claimed(jobs, startedAt, performance.now());
        this.deps.claimed(jobs);
        askWhenDue = false;
        attempted();
      } catch (error) {
        bounds.claimFailed();
        this.deps.claimFailed(error);
        wake.more();
        const retryInMs = failures.next();
        // A worker started before `pgq migrate` says what to run, and starts once it has run.
        const unmigrated = schemaNotMigratedError(error, tables.schema);
        if (unmigrated) log.error({ err: unmigrated, retryInMs }, "cannot claim: pgq's schema is not migrated; retrying");
        else log.warn({ err: error, retryInMs }, "claiming jobs failed; retrying");
        pool.recoverFrom(error);
        attempted();
        await wake.sleep(retryInMs);
      }
    }
    clearInterval(this.auditTimer);
    attempted();
  }

  /** Runs `work` beside the claims, bounded, unless the same work is under way; a failure waits for its next turn. */
  private runAside(what: string, work: () => Promise<void>): void {
    if (this.aside.has(what) || this.stopping) return;
    this.aside.add(what);
    bounded(work(), STATEMENT_BOUND_MS, what)
      .catch((error: unknown) => this.deps.log.debug({ err: error }, `${what} failed`))
      .finally(() => this.aside.delete(what));
  }

  /** Drops every bound that has a claimable job behind it, and claims at once from the head. */
  private async audit(): Promise<void> {
    const { asidePool, tables, bounds, wake, log } = this.deps;
    const behind = await queuesBehindBounds(asidePool.sql, tables, bounds.forAudit(this.deps.hearsAll()));
    for (const queue of behind) bounds.rewind(queue);
    if (behind.length > 0) {
      log.debug({ queues: behind }, "jobs were waiting behind the claim bound");
      wake.now();
    }
  }

  stop(): void {
    this.stopping = true;
    clearInterval(this.auditTimer);
    this.deps.wake.now(false);
  }
}
