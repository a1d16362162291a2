// What a failed attempt leaves behind: the error as structured JSON, not only its stack text,
// so that an operator (pgq dead list, inspect, the dashboard) sees its name, code and cause, and
// the properties a library put on it (a driver's SQLSTATE detail, an HTTP client's status).
import { inspect } from "node:util";
import { PgqError } from "./errors.js";

export interface ErrorDetails {
  name: string;
  message: string;
  code?: string | number;
  stack?: string;
  /** The error's cause, recorded the same way (a few levels deep). */
  cause?: ErrorDetails;
  /** The error's own enumerable properties, other than the above, as JSON. */
  props?: Record<string, unknown>;
}

/** Everything a failed attempt records about its error. */
export interface ErrorRecord {
  /** For last_error: the summary, or the stack where there is one. */
  text: string;
  /** One line, for the error history and tables. */
  summary: string;
  details: ErrorDetails;
}

export function errorRecord(error: unknown): ErrorRecord {
  return { text: errorText(error), summary: errorSummary(error), details: errorDetails(error) };
}

/** Kept per attempt in the error history: enough for any stack, not a whole log. */
const STACK_CHARS = 4000;
const MESSAGE_CHARS = 2000;
const PROPS_CHARS = 2000;
const CAUSE_DEPTH = 3;

/** The error as JSON that survives a round trip through jsonb. */
export function errorDetails(error: unknown, depth = 0): ErrorDetails {
  if (!(error instanceof Error)) {
    return { name: typeof error, message: clip(typeof error === "string" ? error : inspect(error, { depth: 4 }), MESSAGE_CHARS) };
  }
  const details: ErrorDetails = { name: error.name, message: clip(error.message, MESSAGE_CHARS) };
  const { code } = error as { code?: unknown };
  if (typeof code === "string" || typeof code === "number") details.code = code;
  // pgq's own errors (a timeout, a lost lease) say all in their message; their stack is pgq's.
  if (error.stack && !(error instanceof PgqError)) details.stack = clip(error.stack, STACK_CHARS);
  if (error.cause !== undefined && depth < CAUSE_DEPTH) details.cause = errorDetails(error.cause, depth + 1);
  const props = ownProps(error);
  if (props) details.props = props;
  return details;
}

/** One line: what a log line, a table cell or last_error's first line shows. */
export function errorSummary(error: unknown): string {
  return clean(summary(error));
}

function summary(error: unknown): string {
  if (error instanceof PgqError) return `${error.name} [${error.code}]: ${error.message}`;
  if (error instanceof Error) {
    const { code } = error as { code?: unknown };
    return typeof code === "string" || typeof code === "number" ? `${error.name} [${code}]: ${error.message}` : `${error.name}: ${error.message}`;
  }
  return typeof error === "string" ? error : inspect(error, { depth: 4, breakLength: Infinity });
}

/** The text kept in last_error: the summary and, where there is one, the stack. */
export function errorText(error: unknown): string {
  if (error instanceof PgqError || !(error instanceof Error) || !error.stack) return errorSummary(error);
  return clean(error.stack);
}

function ownProps(error: Error): Record<string, unknown> | undefined {
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (!RECORDED.has(key)) props[key] = (error as unknown as Record<string, unknown>)[key];
  }
  if (Object.keys(props).length === 0) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(props, jsonbSafe);
  } catch {
    return { unserialisable: clip(inspect(props, { depth: 2, breakLength: Infinity }), PROPS_CHARS) };
  }
  if (text === undefined) return undefined;
  if (text.length > PROPS_CHARS) return { truncated: clip(text, PROPS_CHARS) };
  return JSON.parse(text) as Record<string, unknown>;
}

/** JSON text that jsonb accepts, whatever strings the value holds. */
export function jsonbText(value: unknown): string {
  return JSON.stringify(value, jsonbSafe);
}

const RECORDED = new Set(["code", "cause", "name", "message", "stack"]);

/** A JSON.stringify replacer for what jsonb refuses: \u0000 and lone surrogates, in values and keys; and bigints. */
function jsonbSafe(_key: string, value: unknown): unknown {
  if (typeof value === "string") return clean(value);
  if (typeof value === "bigint") return value.toString();
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [clean(k), v]));
  }
  return value;
}

/** Text that PostgreSQL's text and jsonb accept: no \u0000, no lone surrogates. */
function clean(text: string): string {
  return text.toWellFormed().replaceAll("\u0000", "\\u0000");
}

function clip(text: string, chars: number): string {
  return clean(text.length > chars ? `${text.slice(0, chars)}…` : text);
}
