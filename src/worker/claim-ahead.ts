// How many jobs a worker claims ahead of its free slots.
//
// A slot that frees waits a whole claim (a round trip and a commit, milliseconds with fsync on)
// before its next job starts, unless a claimed job is already waiting for it. So a worker holds
// a small local buffer of claimed jobs, sized to what it finishes while one claim runs: for
// short jobs that hides the claim entirely and makes each claim a bigger batch (fewer commits
// per job); for long jobs the target is zero, so a job never sits in one worker's buffer while
// another worker idles. Buffered jobs keep their leases renewed, and are handed back without
// spending an attempt when the worker stops.

/** The finishing rate is counted over the last second, in ten buckets of 100 ms. */
const BUCKET_MS = 100;
const BUCKETS = 10;
/** Claim ahead for this many claim round trips, so that a slow claim does not starve the slots. */
const ROUND_TRIPS_AHEAD = 2;

export class ClaimAhead {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private bucket = 0;
  private claimMs = 0;

  constructor(private readonly max: number) {}

  /** A job's handler returned (or threw); `now` is performance.now(). */
  jobFinished(now: number): void {
    this.advance(now);
    this.counts[this.bucket % BUCKETS]!++;
  }

  /** A claim took `ms`: a moving average, so that one slow claim does not swing the target. */
  claimTook(ms: number): void {
    this.claimMs = this.claimMs === 0 ? ms : 0.8 * this.claimMs + 0.2 * ms;
  }

  /** How many claimed jobs to keep waiting for a slot. */
  target(now: number): number {
    this.advance(now);
    const perMs = this.counts.reduce((a, b) => a + b, 0) / (BUCKETS * BUCKET_MS);
    // Rounded down: a worker that finishes less than one job per two claims holds nothing back.
    return Math.min(this.max, Math.floor(perMs * this.claimMs * ROUND_TRIPS_AHEAD));
  }

  private advance(now: number): void {
    const current = Math.floor(now / BUCKET_MS);
    for (let b = Math.max(this.bucket + 1, current - BUCKETS + 1); b <= current; b++) this.counts[b % BUCKETS] = 0;
    this.bucket = Math.max(this.bucket, current);
  }
}
