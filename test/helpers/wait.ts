// Waiting on conditions and events with a bound, instead of sleeping and hoping.
import type { EventEmitter } from "node:events";

export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, what = "condition" }: { timeoutMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function nextEvent<A extends unknown[]>(emitter: EventEmitter, event: string, timeoutMs = 10_000): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`));
    }, timeoutMs);
    function onEvent(...args: unknown[]) {
      clearTimeout(timer);
      resolve(args as A);
    }
    emitter.once(event, onEvent);
  });
}
