// Queue depth per queue and state, as `q.stats()` and `pgq inspect` show it.
import { sql as k } from "kysely";
import type { Sql } from "postgres";
import { queryBuilder, run } from "../db/kysely.js";
import type { QueueStats, Stats } from "../types.js";

/**
 * One pass over pgq.jobs grouped by queue (states as in the first migration), and one over
 * dead_jobs, merged so a queue with only dead jobs still shows. Times are the database's.
 */
export async function queueStats(sql: Sql, schema: string): Promise<Stats> {
  const db = queryBuilder(schema);
  const live = db
    .selectFrom("jobs")
    .select([
      "queue",
      k<number>`count(*) filter (where locked_until is null and run_at <= now())::int`.as("ready"),
      k<number>`count(*) filter (where locked_until is null and run_at > now() and attempts = 0)::int`.as("scheduled"),
      k<number>`count(*) filter (where locked_until is not null)::int`.as("running"),
      k<number>`count(*) filter (where locked_until is null and run_at > now() and attempts > 0)::int`.as("retrying"),
      k<number | null>`(extract(epoch from now() - min(run_at) filter (where locked_until is null and run_at <= now())) * 1000)::bigint`.as(
        "oldest_ready_age_ms",
      ),
    ])
    .groupBy("queue");
  const dead = db
    .selectFrom("dead_jobs")
    .select(["queue", k<number>`count(*)::int`.as("dead")])
    .groupBy("queue");
  const [liveRows, deadRows] = await Promise.all([run(sql, live), run(sql, dead)]);
  const byQueue = new Map<string, QueueStats>();
  const entry = (queue: string) => {
    let s = byQueue.get(queue);
    if (!s) byQueue.set(queue, (s = { queue, ready: 0, scheduled: 0, running: 0, retrying: 0, dead: 0, oldestReadyAgeMs: null }));
    return s;
  };
  for (const r of liveRows) {
    Object.assign(entry(r.queue), {
      ready: r.ready,
      scheduled: r.scheduled,
      running: r.running,
      retrying: r.retrying,
      oldestReadyAgeMs: r.oldest_ready_age_ms === null ? null : Number(r.oldest_ready_age_ms),
    });
  }
  for (const r of deadRows) entry(r.queue).dead = r.dead;
  return { queues: [...byQueue.values()].sort((a, b) => a.queue.localeCompare(b.queue)) };
}
