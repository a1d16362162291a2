// Waiting with a bound: every wait in the benchmark ends by count or by time.
import { performance } from "node:perf_hooks";

export const now = () => performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Counts handled jobs and lets a scenario wait until `target` have been seen or time runs out. */
export class Countdown {
  count = 0;
  private reached: (() => void) | undefined;

  constructor(private readonly target: number) {}

  tick(): void {
    if (++this.count >= this.target) this.reached?.();
  }

  /** Resolves true once `target` is reached, false if `ms` pass first. */
  wait(ms: number): Promise<boolean> {
    if (this.count >= this.target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.reached = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}
