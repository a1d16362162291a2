// A migrated database and a connected client per test, closed when the file ends.
import { after } from "node:test";
import postgres, { type Sql } from "postgres";
import { connect, type Queue } from "../../src/index.js";
import { freshDatabase } from "./db.js";

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
