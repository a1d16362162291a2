// When the fetch loop next claims: at once (a notification, a freed slot, rescued jobs), in N
// ms (a delayed job or a retry coming due), or at the safety-net poll.
import { performance } from "node:perf_hooks";

export class WakeUp {
  /** There may be claimable jobs: set by notifications, the poll, full claims and failed ones. */
  private workMayWait = true;
  /** A limit held the last claim back: the next freed slot may get a job. */
  private slotMayAdmit = false;
  private nextPollAt: number;
  private interrupt: (() => void) | undefined;

  constructor(private readonly pollIntervalMs: number) {
    this.nextPollAt = performance.now() + pollIntervalMs;
  }

  /** True if a claim may find work; the flag is cleared until the next wake with new work. */
  takeWork(): boolean {
    const may = this.workMayWait;
    this.workMayWait = false;
    return may;
  }

  /** Claim again once there is room: the last claim was full, or it failed. */
  more(): void {
    this.workMayWait = true;
  }

  /** Claim again once one of this worker's jobs finishes: a queue's limit is reached. */
  whenSlotFrees(): void {
    this.slotMayAdmit = true;
  }

  /** Wakes the loop at once; with newWork false only to see whether there is room now (a slot freed). */
  now(newWork = true): void {
    if (newWork || this.slotMayAdmit) this.workMayWait = true;
    this.slotMayAdmit = false;
    this.interruptSleep();
  }

  /** Claims again in `ms`, if that is before the next poll. */
  in(ms: number): void {
    const at = performance.now() + ms;
    if (at < this.nextPollAt) {
      this.nextPollAt = at;
      // Only to sleep again until the earlier time: a slot freeing is still awaited.
      this.interruptSleep();
    }
  }

  private interruptSleep(): void {
    const interrupt = this.interrupt;
    this.interrupt = undefined;
    interrupt?.();
  }

  /** Sleeps until woken or until the poll; true if the poll came due (then delayed jobs are looked for too). */
  async untilWoken(): Promise<boolean> {
    await this.sleep(Math.max(0, this.nextPollAt - performance.now()));
    if (performance.now() < this.nextPollAt) return false;
    this.workMayWait = true;
    this.nextPollAt = performance.now() + this.pollIntervalMs;
    return true;
  }

  /** Sleeps `ms`, or less if woken. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.interrupt = done;
    });
  }
}
