// Applies the committed migrations under migrations/committed.
//
// pgq's migrations are authored and committed with graphile-migrate, but graphile-migrate keeps
// its bookkeeping in a fixed `graphile_migrate` schema that a user's own project may be using
// in the same database. So pgq applies its committed files with this small runner instead,
// which records them in pgq's own schema, checks graphile-migrate's hash chain so an edited
// file is refused, and serialises concurrent runs with a transaction-scoped advisory lock.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Sql } from "postgres";
import { PgqError } from "../errors.js";
import { quoteIdent } from "../db/schema.js";
import { transaction } from "../db/transaction.js";

export interface Migration {
  filename: string;
  hash: string;
  previousHash: string | null;
  body: string;
}

const committedDir = fileURLToPath(new URL("../../migrations/committed/", import.meta.url));

/** The committed migrations shipped with this version of pgq, in order, hash chain checked. */
export async function committedMigrations(): Promise<Migration[]> {
  const files = (await readdir(committedDir)).filter((f) => /^\d{6}.*\.sql$/.test(f)).sort();
  const migrations: Migration[] = [];
  let previous: string | null = null;
  for (const filename of files) {
    const migration = parseMigration(filename, await readFile(committedDir + filename, "utf8"));
    if (migration.previousHash !== previous || graphileMigrateHash(migration.body, previous) !== migration.hash) {
      throw new PgqError("MIGRATION_FAILED", `migration ${filename} does not match its recorded hash; was it edited after commit?`);
    }
    migrations.push(migration);
    previous = migration.hash;
  }
  return migrations;
}

// graphile-migrate's committed-file format: "--! Key: value" header lines, a blank line, the body.
function parseMigration(filename: string, text: string): Migration {
  const lines = text.split("\n");
  const headers = new Map<string, string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const header = /^--! ([A-Z][a-zA-Z0-9_]*)(?::(.*))?$/.exec(lines[i]!);
    if (!header) break;
    headers.set(header[1]!, (header[2] ?? "").trim());
  }
  const hash = headers.get("Hash");
  const previous = headers.get("Previous");
  if (!hash || previous === undefined) {
    throw new PgqError("MIGRATION_FAILED", `migration ${filename} has no graphile-migrate header`);
  }
  return { filename, hash, previousHash: previous === "-" ? null : previous, body: lines.slice(i).join("\n").trim() + "\n" };
}

function graphileMigrateHash(body: string, previousHash: string | null): string {
  const text = ((previousHash ?? "") + "\n" + body.trim()).trim() + "\n";
  return "sha1:" + createHash("sha1").update(text).digest("hex");
}

/** The SQL of a migration for a given schema. */
export function renderMigration(migration: Migration, schema: string): string {
  return migration.body.replace(/:PGQ_SCHEMA\b/g, quoteIdent(schema));
}

/** The schema and the table where pgq records applied migrations (also in `pgq migrate --print`). */
export function bookkeepingSql(schema: string): string {
  const s = quoteIdent(schema);
  return `create schema if not exists ${s};
create table if not exists ${s}.migrations (
  filename      text primary key,
  hash          text not null unique,
  previous_hash text references ${s}.migrations (hash),
  applied_at    timestamptz not null default now()
);`;
}

/** Brings the schema up to date; safe to call from many processes at once. Returns what it applied. */
export async function migrate(sql: Sql, schema: string): Promise<string[]> {
  const migrations = await committedMigrations();
  const s = quoteIdent(schema);
  return transaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('pgq.migrate'), hashtext(${schema}))`;
    await tx.unsafe(bookkeepingSql(schema));
    const applied = await tx.unsafe<{ filename: string; hash: string }[]>(
      `select filename, hash from ${s}.migrations order by filename`,
    );
    applied.forEach((row, i) => {
      if (migrations[i]?.hash !== row.hash) {
        throw new PgqError(
          "MIGRATION_FAILED",
          `schema ${schema} has migration ${row.filename}, which this version of pgq does not know: upgrade pgq`,
        );
      }
    });
    const pending = migrations.slice(applied.length);
    for (const migration of pending) {
      await tx.unsafe(renderMigration(migration, schema));
      await tx.unsafe(`insert into ${s}.migrations (filename, hash, previous_hash) values ($1, $2, $3)`, [
        migration.filename,
        migration.hash,
        migration.previousHash,
      ]);
    }
    return pending.map((m) => m.filename);
  });
}
