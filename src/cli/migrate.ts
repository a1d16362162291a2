// pgq migrate [--print]
import { bookkeepingSql, committedMigrations, renderMigration } from "../admin/migrate.js";
import { quoteIdent } from "../db/schema.js";
import { createLogger, withSession, type GlobalOptions } from "./session.js";

export async function migrateCommand(options: { print?: boolean }, globals: GlobalOptions): Promise<void> {
  if (options.print) {
    process.stdout.write(await migrationScript(globals.schema));
    return;
  }
  const log = createLogger(globals, "warn");
  const applied = await withSession(globals, log, ({ q }) => q.migrate());
  console.log(applied.length === 0 ? `schema "${globals.schema}" is up to date` : applied.map((f) => `applied ${f}`).join("\n"));
}

/**
 * Every migration as one SQL script, for teams that apply schema changes with their own tools.
 * It records each migration in <schema>.migrations exactly as `pgq migrate` does (see
 * src/admin/migrate.ts), so that pgq, and a later `pgq migrate`, see the schema as up to date.
 */
async function migrationScript(schema: string): Promise<string> {
  const s = quoteIdent(schema);
  const literal = (v: string | null) => (v === null ? "null" : `'${v.replace(/'/g, "''")}'`);
  const parts = [
    `-- pgq's schema ${s}, written by \`pgq migrate --print\`. Apply it once, in one transaction.`,
    "begin;",
    bookkeepingSql(schema),
  ];
  for (const m of await committedMigrations()) {
    parts.push(
      `-- ${m.filename}`,
      renderMigration(m, schema).trim(),
      `insert into ${s}.migrations (filename, hash, previous_hash) values (${literal(m.filename)}, ${literal(m.hash)}, ${literal(m.previousHash)});`,
    );
  }
  parts.push("commit;", "");
  return parts.join("\n\n");
}
