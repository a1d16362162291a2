// How the CLI ends: exit 0 on success, 1 on a runtime failure, 2 on a usage error, with one
// line on stderr saying what went wrong, never a stack trace (unless --log-level debug).
import { CommanderError } from "commander";
import { schemaNotMigratedError } from "../db/schema-errors.js";
import { PgqError, ValidationError } from "../errors.js";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The user asked for something that cannot work as given; nothing was written. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (error instanceof UsageError || error instanceof ValidationError) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** The one line printed for an error, after "pgq: ". */
export function describeError(error: unknown, schema: string): string {
  if (error instanceof CommanderError) return `${error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ")} (see pgq --help)`;
  // The library throws SCHEMA_NOT_MIGRATED itself; this catches what reaches here unmapped.
  const known = error instanceof UsageError || error instanceof PgqError ? error : schemaNotMigratedError(error, schema);
  return firstLine(known?.message ?? (error instanceof Error ? error.message : String(error)));
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!.trim() || "unknown error";
}
