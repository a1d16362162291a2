// A migrated database and a connected client per test file, closed when it ends; waiting for queues to drain.
import { after } from "node:test";
import postgres, { type Sql } from "postgres";
import { connect, type Queue } from "../../src/index.js";
import { freshDatabase } from "./db.js";
import { waitFor } from "./wait.js";

export interface TestQueue {
  q: Queue;
  /** A separate pool for the test's own checks. */
  db: Sql;
  url: string;
}

export async function testQueue(): Promise<TestQueue> {
  const { url } = await freshDatabase();
  const q = await connect({ databaseUrl: url });
  const db = postgres(url, { max: 4, onnotice: () => {} });
  after(async () => {
    await q.close();
    await db.end();
  });
  return { q, db, url };
}

/** Waits until pgq.jobs holds no job of `queue` (of any queue, without one): each ran to its end. */
export async function drained(db: Sql, queue?: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await db`select from pgq.jobs where ${queue ?? null}::text is null or queue = ${queue ?? null} limit 1`).length === 0, {
    timeoutMs,
    what: queue === undefined ? "every job to finish" : `queue ${queue} to drain`,
  });
}
