// A producer of one-job enqueues at a fixed rate, as an application's requests would enqueue:
// calls are issued on a 10 ms tick, at most MAX_IN_FLIGHT at once; past that it falls behind
// (and whoever reads `sent` sees it).
import { now, sleep } from "./clock.js";
import type { Connected } from "./systems/system.js";

const TICK_MS = 10;
const MAX_IN_FLIGHT = 64;

export interface Producer {
  /** Enqueue calls issued so far (job i carries payload { i }). */
  readonly sent: number;
  /** Stops issuing and waits for the calls in flight. */
  stop(): Promise<void>;
}

/** Starts enqueuing at `rate` jobs/s; `committed(i, t)` runs as each call returns. */
export function startProducer(conn: Connected, rate: number, committed: (i: number, t: number) => void = () => {}): Producer {
  let sent = 0;
  let stopping = false;
  const inFlight = new Set<Promise<void>>();
  const start = now();
  const loop = (async () => {
    while (!stopping) {
      const due = Math.floor(((now() - start) / 1000) * rate) - sent;
      for (let k = 0; k < due && inFlight.size < MAX_IN_FLIGHT; k++) {
        const i = sent++;
        const call: Promise<void> = conn.enqueueOne({ i }).then(
          () => committed(i, now()),
          (error) => console.error(`  enqueue ${i} failed: ${error}`),
        ).finally(() => inFlight.delete(call));
        inFlight.add(call);
      }
      await sleep(TICK_MS);
    }
  })();
  return {
    get sent() {
      return sent;
    },
    async stop() {
      stopping = true;
      await loop;
      await Promise.all(inFlight);
    },
  };
}
