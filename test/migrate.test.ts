import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { committedMigrations } from "../src/admin/migrate.js";
import { freshDatabase } from "./helpers/db.js";

test("migrate is idempotent and safe when several processes run it at once", async () => {
  const { url } = await freshDatabase({ migrated: false });
  const clients = await Promise.all([1, 2, 3, 4, 5].map(() => connect({ databaseUrl: url })));
  try {
    const applied = await Promise.all(clients.map((q) => q.migrate()));
    const all = (await committedMigrations()).map((m) => m.filename);
    // Exactly one run applied everything; the others found nothing to do.
    assert.deepEqual(applied.filter((a) => a.length > 0), [all]);
    assert.deepEqual(await clients[0]!.migrate(), []);
    const rows = await clients[0]!.sql`select filename from pgq.migrations order by filename`;
    assert.deepEqual(rows.map((r) => r.filename), all);
  } finally {
    await Promise.all(clients.map((q) => q.close()));
  }
});

test("pgq's bookkeeping leaves a user's graphile-migrate state alone", async () => {
  const { url } = await freshDatabase({ migrated: false });
  const sql = postgres(url, { onnotice: () => {} });
  const q = await connect({ sql });
  try {
    await sql`create schema graphile_migrate`;
    await sql`create table graphile_migrate.migrations (hash text primary key, previous_hash text, filename text)`;
    await sql`insert into graphile_migrate.migrations values ('sha1:users-own', null, '000001.sql')`;
    await q.migrate();
    const theirs = await sql`select hash from graphile_migrate.migrations`;
    assert.deepEqual(theirs.map((r) => r.hash), ["sha1:users-own"]);
    const [ours] = await sql`select count(*)::int as n from pgq.migrations`;
    assert.ok(ours!.n >= 1);
  } finally {
    await q.close();
    await sql.end();
  }
});

test("the schema name is configurable, and two schemas live side by side", async () => {
  const { url } = await freshDatabase({ migrated: false });
  const a = await connect({ databaseUrl: url, schema: "jobs_a" });
  const b = await connect({ databaseUrl: url, schema: "jobs_b" });
  try {
    await Promise.all([a.migrate(), b.migrate()]);
    await a.enqueue("q", { in: "a" });
    assert.equal((await a.stats()).queues[0]?.ready, 1);
    assert.deepEqual((await b.stats()).queues, []);
    const [row] = await a.sql`select jobs_b.enqueue('q', '{"in":"b"}') as id`;
    assert.ok(row!.id);
    assert.equal((await b.stats()).queues[0]?.ready, 1);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test("an invalid schema name is refused before connecting", async () => {
  await assert.rejects(connect({ databaseUrl: "postgres://unused", schema: 'x"; drop table y; --' }), { code: "INVALID_OPTION" });
});
