// Each test file gets databases of its own, copied from a template migrated once per version of
// the migrations, so files run in parallel and start from a clean schema in milliseconds.
import { createHash } from "node:crypto";
import { after } from "node:test";
import postgres, { type Sql } from "postgres";
import { committedMigrations, migrate } from "../../src/admin/migrate.js";

export const serverUrl = (() => {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is not set: run the tests with `npm test`");
  return url;
})();

function urlFor(database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(serverUrl, { max: 2, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

async function template(): Promise<string> {
  const hash = createHash("sha1").update((await committedMigrations()).map((m) => m.hash).join()).digest("hex");
  const name = `pgq_template_${hash.slice(0, 12)}`;
  await withAdmin(async (sql) => {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext('pgq tests: template'))`;
      const [exists] = await tx`select from pg_database where datname = ${name}`;
      if (exists) return;
      await sql.unsafe(`create database ${name}`);
      const db = postgres(urlFor(name), { max: 1, onnotice: () => {} });
      try {
        await migrate(db, "pgq");
      } finally {
        await db.end();
      }
    });
  });
  return name;
}

export interface TestDatabase {
  url: string;
  name: string;
}

/** A fresh database with pgq's schema (or an empty one), dropped when the test file ends. */
export async function freshDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `pgq_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const from = options.migrated === false ? "template0" : await template();
  await withAdmin((sql) => sql.unsafe(`create database ${name} template ${from}`));
  after(() => withAdmin((sql) => sql.unsafe(`drop database if exists ${name} with (force)`)));
  return { url: urlFor(name), name };
}
