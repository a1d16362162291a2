// Queue depth per queue and state, as `q.stats()` shows it: inspect()'s counts without the
// fields only `pgq inspect` shows, so both count every state the same way, in the same bounded time.
import type { Sql } from "postgres";
import type { Stats } from "../types.js";
import { inspectQueues } from "./inspect.js";

/** Exact up to inspect()'s default bound per state, estimated beyond it (q.inspect() says which). */
export async function queueStats(sql: Sql, schema: string): Promise<Stats> {
  const { queues } = await inspectQueues(sql, schema);
  return {
    queues: queues.map(({ queue, ready, scheduled, running, retrying, dead, oldestReadyAgeMs }) => ({
      queue, ready, scheduled, running, retrying, dead, oldestReadyAgeMs,
    })),
  };
}
