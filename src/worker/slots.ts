// A worker's execution slots: the jobs running now, and the jobs claimed ahead of a free slot
// (claim-ahead.ts), each with the lease the worker must keep renewing.
import type { ClaimedJob } from "../sql/claim.js";
import { AttemptAbort } from "./attempt-abort.js";
import { ClaimAhead } from "./claim-ahead.js";

/** A claimed job whose lease this worker holds. */
export interface Held {
  claimed: ClaimedJob;
  /** performance.now() of the last renewal that reached the database (or of the claim). */
  renewedAt: number;
  /** performance.now() when the claim returned the job. */
  claimedAt: number;
}

export interface Running extends Held {
  abort: AttemptAbort;
  /** The handler returned: the job is being completed, and its lease no longer matters. */
  finishing: boolean;
}

export class Slots {
  private readonly running = new Map<string, Running>();
  private waiting: Held[] = [];
  private readonly claimAhead: ClaimAhead;

  constructor(private readonly concurrency: number) {
    this.claimAhead = new ClaimAhead(Math.min(1000, 8 * concurrency));
  }

  get busy(): number {
    return this.running.size;
  }

  get total(): number {
    return this.concurrency;
  }

  /** How many jobs the next claim asks for; 0 when it should not claim now. */
  wanted(now: number): number {
    const ahead = this.claimAhead.target(now);
    const want = this.concurrency - this.running.size + ahead - this.waiting.length;
    // Topping up a buffer that is still half full would only make claims smaller.
    return want > 0 && this.waiting.length <= ahead / 2 ? want : 0;
  }

  /** A claim that started at `startedAt` returned these jobs at `claimedAt`. */
  claimed(jobs: ClaimedJob[], startedAt: number, claimedAt: number): void {
    this.claimAhead.claimTook(claimedAt - startedAt);
    for (const job of jobs) this.waiting.push({ claimed: job, renewedAt: claimedAt, claimedAt });
  }

  /** Moves waiting jobs into free slots, handing each to `run`. */
  startWaiting(run: (entry: Running) => void): void {
    while (this.waiting.length > 0 && this.running.size < this.concurrency) {
      const { claimed, renewedAt, claimedAt } = this.waiting.shift()!;
      const entry: Running = { claimed, renewedAt, claimedAt, abort: new AttemptAbort(), finishing: false };
      this.running.set(claimed.id, entry);
      run(entry);
    }
  }

  /** The job's slot is free; false if it was already. */
  free(id: string, now: number): boolean {
    if (!this.running.delete(id)) return false;
    this.claimAhead.jobFinished(now);
    return true;
  }

  /** The leases to renew: running jobs not yet finishing, and waiting ones. */
  held(): { running: Running[]; waiting: Held[] } {
    return { running: [...this.running.values()].filter((r) => !r.finishing), waiting: [...this.waiting] };
  }

  /** A waiting job whose lease was lost leaves the buffer: another worker may have it now. */
  dropWaiting(held: Held): void {
    this.waiting = this.waiting.filter((w) => w !== held);
  }

  /** Empties the buffer, for the jobs to be handed back. */
  takeWaiting(): ClaimedJob[] {
    return this.waiting.splice(0).map((w) => w.claimed);
  }

  /** A job q.cancel() took (its row is already gone): aborted if it runs, dropped if it waits. */
  cancel(id: string, reason: Error): void {
    const running = this.running.get(id);
    if (running && !running.finishing) running.abort.abort(reason);
    this.waiting = this.waiting.filter((w) => w.claimed.id !== id);
  }

  abortRunning(reason: Error): void {
    for (const r of this.running.values()) if (!r.finishing) r.abort.abort(reason);
  }
}
