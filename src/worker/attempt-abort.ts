// How an attempt is aborted: its timeout, a lost lease, q.cancel(), a hard stop. Handlers see it
// as ctx.signal, but most never look, and an AbortController with a listener costs about 8 µs a
// job in Node (its EventTarget): as much as the rest of the worker's own work on a job. So the
// signal is made only when a handler reads it, and the executor listens with plain callbacks.

export class AttemptAbort {
  private controller: AbortController | undefined;
  private abortedWith: { reason: unknown } | undefined;
  private listeners: ((reason: unknown) => void)[] = [];

  get aborted(): boolean {
    return this.abortedWith !== undefined;
  }

  /** Why it was aborted; undefined while it runs. */
  get reason(): unknown {
    return this.abortedWith?.reason;
  }

  /** ctx.signal: made at the first read, already aborted if the attempt is. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener(reason);
  }

  /** Calls `listener` once when the attempt is aborted, at once if it is already; returns what removes it. */
  onAbort(listener: (reason: unknown) => void): () => void {
    if (this.abortedWith) {
      listener(this.abortedWith.reason);
      return () => undefined;
    }
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }
}
