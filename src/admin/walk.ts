// One page of a list that walks a bounded stretch of one index: the job lists (src/admin/jobs.ts)
// and the history (src/admin/history.ts) page this way, however many rows there are and however
// few match.
//
// A page walks at most WALK_LIMIT rows in the index's order and filters what it walked. When the
// walk runs out before the page fills, the page says so and its cursor continues the walk where
// it stopped, so a search for a rare payload costs the operator a click per WALK_LIMIT jobs and
// the database a bounded read per click, never a scan of a million rows.
import type { PendingQuery, Row as PgRow, TransactionSql } from "postgres";
import { ValidationError } from "../errors.js";

export const WALK_LIMIT = 5000;

/** A walked row: its id, its place in the walk's order, and whether the filter holds. */
export interface Walked {
  id: string;
  /** The walk's sort key, as text that casts back exactly (timestamps keep their microseconds). */
  k1: string | null;
  k2: string | null;
  n: number;
  hit: boolean;
}

export interface WalkPage {
  /** The rows that matched, in the walk's order, at most the page's limit. */
  hits: Walked[];
  /** The cursor of the next page; null at the end. */
  next: string | null;
  /** Rows this page walked: WALK_LIMIT when the walk stopped before the page filled. */
  walked: number;
  /** The walk stopped at WALK_LIMIT rows with the page not full: there may be more further on. */
  walkStopped: boolean;
}

/**
 * Runs `walk`, a query that selects id, k1, k2 and hit for at most WALK_LIMIT rows in its
 * index's order, and keeps the first `limit` hits. `walkName` and `key` make the next page's
 * cursor: the sort key of the last hit shown, or of the last row walked when the walk stopped.
 */
export async function walkPage(tx: TransactionSql, walk: PendingQuery<PgRow[]>, limit: number, walkName: string,
  key: (row: Walked) => (string | null)[]): Promise<WalkPage> {
  const rows = await tx<Walked[]>`
    with walked as (
      select w.*, row_number() over () as n from (${walk}) w
    )
    (select id::text, k1, k2, n::int, true as hit from walked where hit order by n limit ${limit + 1})
    union all
    (select id::text, k1, k2, n::int, false from walked order by n desc limit 1)`;
  const last = rows.find((r) => !r.hit);
  const hits = rows.filter((r) => r.hit);
  const walked = last?.n ?? 0;
  const shown = hits.slice(0, limit);
  const full = hits.length > limit;
  const walkStopped = !full && walked >= WALK_LIMIT;
  const resume = full ? shown[shown.length - 1] : walkStopped ? last : undefined;
  return { hits: shown, next: resume ? encodeCursor(walkName, key(resume)) : null, walked, walkStopped };
}

function encodeCursor(walkName: string, key: (string | null)[]): string {
  return Buffer.from(JSON.stringify([walkName, ...key])).toString("base64url");
}

/** The sort key a cursor holds, if it was made by `walkName` with a key of `keyLength` values. */
export function decodeCursor(cursor: string, walkName: string, keyLength: number): string[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString());
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value) || value[0] !== walkName || value.length !== keyLength + 1 || !value.every((v) => typeof v === "string")) {
    throw new ValidationError("INVALID_OPTION", "this page's cursor does not belong to these filters: start again from the first page");
  }
  return value.slice(1) as string[];
}

/**
 * The filter every list applies to a walked row `alias`: its queue, its id, and its payload, as
 * JSON it contains (jsonb's @>, when the text is an object or an array) or text its JSON holds.
 */
export function rowMatches(tx: TransactionSql, alias: string, filter: { queue?: string | undefined; id?: string | undefined; payload?: string | undefined },
  more: PendingQuery<PgRow[]>[] = []) {
  const { queue, id, payload } = filter;
  const parts: PendingQuery<PgRow[]>[] = [...more];
  if (queue !== undefined) parts.push(tx`${tx(alias)}.queue = ${queue}`);
  if (id !== undefined) parts.push(tx`${tx(alias)}.id = ${id}::bigint`);
  if (payload !== undefined && payload !== "") {
    const json = asJsonContainer(payload);
    parts.push(json === undefined
      ? tx`strpos(${tx(alias)}.payload::text, ${payload}) > 0`
      : tx`${tx(alias)}.payload @> ${json}::text::jsonb`);
  }
  if (parts.length === 0) return tx`true`;
  return parts.reduce((a, b) => tx`${a} and ${b}`);
}

function asJsonContainer(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" ? JSON.stringify(value) : undefined;
  } catch {
    return undefined;
  }
}
