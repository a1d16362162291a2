// migrations/schema.sql is the schema the committed migrations make, and reads the same on every
// supported PostgreSQL (CI runs this file on 15 and 18).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, test } from "node:test";
import postgres from "postgres";
import { SNAPSHOT_FILE, schemaSnapshot } from "../src/dev/schema-snapshot.js";
import { freshDatabase } from "./helpers/db.js";

const { url } = await freshDatabase();
const db = postgres(url, { max: 1, onnotice: () => {} });
after(() => db.end());

test("migrations/schema.sql is the migrated schema", async () => {
  const migrated = await schemaSnapshot(db, "pgq");
  const committed = await readFile(SNAPSHOT_FILE, "utf8").catch(() => "(no file)\n");
  try {
    assert.equal(migrated, committed);
  } catch (error) {
    // Node's diff follows; the first line says what to do about it.
    (error as Error).message = `the migrated schema differs from migrations/schema.sql: run \`npm run schema:dump\` and commit the file\n${(error as Error).message}`;
    throw error;
  }
});

test("views read as PostgreSQL 16 and later deparse them, on any version", async () => {
  await db.unsafe(`
    create schema views;
    create table views.t (id int, v int);
    create table views.u (id int, n int);
    create view views.one as
      select id, v + 1 as w, (select max(u.n) from views.u where u.id = t.id) as m, 't.id' as literal from views.t where v > 0;
    create view views.two as select t.id, u.n from views.t join views.u using (id);
    create view views.arms as select id from views.t union all select n from views.u;`);
  const snapshot = await schemaSnapshot(db, "views");
  const view = (name: string) => snapshot.split("\n\n").find((s) => s.startsWith(`create view views.${name} as`))?.trimEnd();
  // One relation: its columns unqualified, but in the subquery, where they stay qualified.
  assert.equal(view("one"), `create view views.one as
 SELECT id,
    (v + 1) AS w,
    ( SELECT max(u.n) AS max
           FROM views.u
          WHERE (u.id = t.id)) AS m,
    't.id'::text AS literal
   FROM views.t
  WHERE (v > 0);`);
  assert.equal(view("two"), `create view views.two as
 SELECT t.id,
    u.n
   FROM (views.t
     JOIN views.u USING (id));`);
  assert.equal(view("arms"), `create view views.arms as
 SELECT t.id
   FROM views.t
UNION ALL
 SELECT u.n AS id
   FROM views.u;`);
});
