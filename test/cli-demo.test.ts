import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { runCli } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";

test("pgq demo with DATABASE_URL runs the sample jobs to the end on that database", async () => {
  const { url } = await freshDatabase({ migrated: false });
  const r = await runCli(["demo"], { databaseUrl: url, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /created pgq's schema/);
  assert.match(r.stdout, /failed: 503 Service Unavailable/);
  assert.match(r.stdout, /succeeded on attempt 2/);
  assert.match(r.stdout, /all done in [\d.]+ s: 78 jobs completed \(\d+ after a retry\), 1 dead/);
  assert.match(r.stdout, /pgq inspect/);
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    assert.equal((await db`select from pgq.jobs`).length, 0);
    const dead = await db`select queue, attempts from pgq.dead_jobs`;
    assert.deepEqual(dead.map((d) => ({ ...d })), [{ queue: "demo.reports", attempts: 3 }]);
  } finally {
    await db.end();
  }
});
