// Every exponential wait in pgq: a failed job's retry delay (retry-policy.ts), the worker's
// retries while the database is away, the LISTEN reconnect, the pool's reconnect.

export interface Exponential {
  /** The first wait, in ms. */
  baseMs: number;
  /** The longest wait, in ms. */
  maxMs: number;
  /** Each wait is this many times the one before; default 2. */
  factor?: number;
}

/** The nominal wait before try `n` (from 1): baseMs * factor^(n-1), capped at maxMs. */
export function exponentialMs(n: number, { baseMs, maxMs, factor = 2 }: Exponential): number {
  // Past 2^52 the product is capped anyway, and the exponent must stay finite.
  return Math.min(maxMs, baseMs * factor ** Math.min(Math.max(n, 1) - 1, 52));
}

/** Successive waits for a loop that retries until something works again. */
export class Backoff {
  private failures = 0;

  constructor(private readonly shape: Exponential) {}

  /** The wait after one more failure. */
  next(): number {
    return exponentialMs(++this.failures, this.shape);
  }

  /** Something worked: true if it had been failing. */
  reset(): boolean {
    const wasFailing = this.failures > 0;
    this.failures = 0;
    return wasFailing;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
