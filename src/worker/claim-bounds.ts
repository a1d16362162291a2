// Where each of a worker's claims starts in its queues' stretch of jobs_claim: the defence
// against a held snapshot (issue 17; the design is in the README, "Claims and a held snapshot").
//
// While any snapshot older than a claimed job is held (a long report, pg_dump, a session left
// in BEGIN), the entry that the job had in jobs_claim cannot be removed, by VACUUM or by index
// scans. A claim that starts at the head of its queue walks every one of them: after ten
// minutes at 1,000 jobs/s, 600,000 entries and 56 ms per claim. Each claim here starts at a
// bound instead: the first live entry that the previous claim saw, or its time if that entry is
// a delayed job, less 2 s of slack (src/sql/claim.ts computes it in the same statement). Before it lie only dead entries, unless
// a job lands there later:
// - a job enqueued with a higher priority, or a run_at in the past, or group members promoted
//   behind their finished head, or jobs a stopping worker released: their notifications say so
//   (migration 000012, src/sql/release.ts), and the queue's bound is dropped at once;
// - a job whose producer's transaction stayed open more than 2 s after its insert (its run_at
//   is its transaction's start): found by the audit, a read on the side every few seconds that
//   looks behind each bound and drops any bound with a live job behind it. Such a job is
//   announced too, by its commit, only not as landing behind: so while the listener hears every
//   notification, the audit looks only behind the bounds of queues that heard one since it last
//   looked, and an idle worker's audit reads nothing; while it does not, behind every bound;
// - notifications missed while the listener was away: every bound is dropped when it is back
//   (a connection that went deaf without closing is found by its probe, and counts as away).
// A dropped bound costs one walk from the head, and the claim that makes it sets a new bound.
import type { ClaimBound } from "../sql/claim.js";

/** What a notification said about where its jobs landed (worker.ts parses the payload). */
export type Landing = { kind: "priority"; priority: number } | { kind: "rewind" };

export class ClaimBounds {
  private readonly bounds = new Map<string, ClaimBound>();
  /** Queues that heard of ready jobs since the last audit, and kept their bound: where one may be behind it. */
  private readonly heardSinceAudit = new Set<string>();
  /** What was heard while a claim was in flight: its bounds were taken before, and may be past it. */
  private heardDuringClaim: Array<[string, Landing | undefined]> | undefined;

  constructor(private readonly queues: string[]) {}

  /** The bounds to claim with, in the order of the worker's queues. */
  forClaim(): (ClaimBound | null)[] {
    this.heardDuringClaim = [];
    return this.queues.map((queue) => this.bounds.get(queue) ?? null);
  }

  /** The claim's statement says where the next one may start; what was heard meanwhile still applies. */
  claimed(next: Map<string, ClaimBound>): void {
    for (const [queue, bound] of next) this.bounds.set(queue, bound);
    const heard = this.heardDuringClaim ?? [];
    this.heardDuringClaim = undefined;
    for (const [queue, landing] of heard) this.landed(queue, landing);
  }

  /** The claim failed: nothing it saw is known. */
  claimFailed(): void {
    this.heardDuringClaim = undefined;
    this.bounds.clear();
  }

  /** A notification said that jobs of `queue` became ready; without a landing, it did not say where. */
  heard(queue: string, landing: Landing | undefined): void {
    this.heardDuringClaim?.push([queue, landing]);
    this.landed(queue, landing);
  }

  private landed(queue: string, landing: Landing | undefined): void {
    const bound = this.bounds.get(queue);
    if (!bound) return;
    if (landing?.kind === "rewind" || (landing && landing.priority < bound.priority)) this.bounds.delete(queue);
    else this.heardSinceAudit.add(queue);
  }

  /** Notifications may have been missed (the listener was away): start from the head again. */
  rewindAll(): void {
    this.bounds.clear();
  }

  rewind(queue: string): void {
    this.bounds.delete(queue);
  }

  /**
   * The bounds the audit looks behind: every one, or, while every notification is heard
   * (`hearsAll`), those of the queues that heard one since the last audit.
   */
  forAudit(hearsAll: boolean): Array<[string, ClaimBound]> {
    const audited = [...this.bounds].filter(([queue]) => !hearsAll || this.heardSinceAudit.has(queue));
    this.heardSinceAudit.clear();
    return audited;
  }
}
