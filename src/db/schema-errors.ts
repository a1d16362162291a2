// A statement that names a table, function or schema of pgq's that the database lacks means pgq's
// migrations have not run there (or not all of them: a newer pgq on an older schema). The
// caller gets SCHEMA_NOT_MIGRATED, saying what to run, instead of PostgreSQL's bare message.
import { PgqError } from "../errors.js";

const MISSING_OBJECT = new Set([
  "42P01", // undefined_table: relation "pgq.jobs" does not exist
  "42883", // undefined_function: function pgq.enqueue(...) does not exist
  "3F000", // invalid_schema_name: schema "pgq" does not exist
]);

/**
 * SCHEMA_NOT_MIGRATED for an error that says an object of pgq's schema is missing, with the
 * original as its cause; undefined for any other error (a missing table of the caller's own, say).
 */
export function schemaNotMigratedError(error: unknown, schema: string): PgqError | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code !== "string" || !MISSING_OBJECT.has(code) || typeof message !== "string") return undefined;
  // The schema's name as PostgreSQL quotes it: "pgq.jobs", pgq.enqueue(...), schema "pgq".
  if (!new RegExp(`(?<![a-z0-9_$])"?${schema}[."]`).test(message)) return undefined;
  return new PgqError(
    "SCHEMA_NOT_MIGRATED",
    `pgq's schema "${schema}" is missing from this database or out of date: run \`pgq migrate\` or q.migrate() (${message})`,
    { cause: error },
  );
}

/** Runs `work`, turning a missing-schema failure into SCHEMA_NOT_MIGRATED. */
export async function checkingSchema<T>(schema: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw schemaNotMigratedError(error, schema) ?? error;
  }
}
