// Where each of a worker's claims starts in its queues' stretch of jobs_claim: the defence
// against a held snapshot (issue 17; the design is in the README, "Claims and a held snapshot").
//
// While any snapshot older than a claimed job is held (a long report, pg_dump, a session left
// in BEGIN), the entry that the job had in jobs_claim cannot be removed, by VACUUM or by index
// scans. A claim that starts at the head of its queue walks every one of them: after ten
// minutes at 1,000 jobs/s, 600,000 entries and 56 ms per claim. Each claim here starts at a
// bound instead: the first live entry that the previous claim saw, or its time if that entry is
// a delayed job, less a margin (src/sql/claim.ts computes it in the same statement). Before it
// lie only dead entries, unless a job lands there later:
// - a job whose producer's transaction committed after the claim's snapshot, with a run_at (its
//   transaction's start) before the claim's time, a delayed job of a higher priority than the
//   bound's, a retry, or group members promoted behind their finished head: its notification
//   says where it lands (migrations 000016 and 000017, src/sql/fail.ts), and the bound moves
//   back to exactly there;
// - a job enqueued with a run_at in the past, or jobs a stopping worker released or maintenance
//   rescued: their notifications say `rewind` (migration 000012, src/sql/release.ts,
//   src/sql/rescue.ts), and the bound is dropped;
// - anything at all while notifications may be missed (the listener is away, or a pooler drops
//   them): the bound sits a margin of 2 s before the first live entry then (none while every
//   notification is heard), and the audit, a read on the side every few seconds, looks
//   behind every bound and drops any bound with a live job behind it. When the listener is back,
//   every bound is dropped (a connection that went deaf without closing is found by its probe,
//   and counts as away). While every notification is heard, the audit looks behind the bounds of
//   queues that heard a notification without a run_at (from a schema not yet migrated to 000016)
//   and, once a minute, behind every bound, in case something unforeseen landed there.
// A dropped bound costs one walk from the head, and the claim that makes it sets a new bound.
import type { ClaimBound } from "../sql/claim.js";

/** What a notification said about where its jobs landed (listener.ts parses the payload): with runAtMs, exactly where. */
export type Landing = { kind: "priority"; priority: number; runAtMs?: number } | { kind: "rewind" };

/** How far a bound sits before the first live entry (see above). */
export const MARGIN_MS = { hearingAll: 0, missingSome: 2000 } as const;

/** While every notification is heard, the audit still looks behind every bound at every this many audits. */
const FULL_AUDIT_EVERY = 12;

export class ClaimBounds {
  private readonly bounds = new Map<string, ClaimBound>();
  /** Queues that heard of ready jobs since the last audit, and kept their bound: where one may be behind it. */
  private readonly heardSinceAudit = new Set<string>();
  /** What was heard while a claim was in flight: its bounds were taken before, and may be past it. */
  private heardDuringClaim: Array<[string, Landing | undefined]> | undefined;
  private audits = 0;

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
    if (landing?.kind === "rewind") this.bounds.delete(queue);
    else if (landing?.runAtMs !== undefined) {
      const at = { priority: landing.priority, runAt: new Date(landing.runAtMs) };
      if (at.priority < bound.priority || (at.priority === bound.priority && at.runAt < bound.runAt)) this.bounds.set(queue, at);
    } else if (landing && landing.priority < bound.priority) this.bounds.delete(queue);
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
   * (`hearsAll`), those of the queues that heard one without a run_at since the last audit, and
   * every one at every FULL_AUDIT_EVERY-th audit.
   */
  forAudit(hearsAll: boolean): Array<[string, ClaimBound]> {
    const all = !hearsAll || ++this.audits % FULL_AUDIT_EVERY === 0;
    const audited = [...this.bounds].filter(([queue]) => all || this.heardSinceAudit.has(queue));
    this.heardSinceAudit.clear();
    return audited;
  }
}
