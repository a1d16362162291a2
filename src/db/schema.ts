// The configurable schema every pgq table lives in, and the names derived from it.
import { ValidationError } from "../errors.js";

export const DEFAULT_SCHEMA = "pgq";

/** Lowercase identifiers only, short enough that `<schema>_jobs` is a valid channel name. */
export function assertSchemaName(schema: string): void {
  if (!/^[a-z_][a-z0-9_]{0,57}$/.test(schema)) {
    throw new ValidationError(
      "INVALID_OPTION",
      `schema ${JSON.stringify(schema)} must be 1-58 lowercase letters, digits or underscores, not starting with a digit`,
    );
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The channel the insert trigger notifies when jobs become ready (see the first migration). */
export function readyChannel(schema: string): string {
  return `${schema}_jobs`;
}

/** The channel every statement that finishes jobs notifies with their ids, for q.waitFor(). */
export function finishedChannel(schema: string): string {
  return `${schema}_finished`;
}

/** The channel q.cancel() notifies with the ids of running jobs, for their workers to abort them. */
export function cancelChannel(schema: string): string {
  return `${schema}_cancel`;
}
