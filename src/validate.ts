// Checks everything a caller hands to enqueue before any SQL runs, so a mistake is a
// ValidationError that names the problem and nothing is written.
import { ValidationError } from "./errors.js";

export const MAX_QUEUE_NAME_LENGTH = 128;
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Deeper documents are refused, well short of where PostgreSQL's jsonb parser runs out of stack
 *  (between 10,000 and 20,000 levels with the default max_stack_depth, on PostgreSQL 15 and 18). */
export const MAX_PAYLOAD_DEPTH = 1000;
export const MAX_KEY_LENGTH = 512;
/** The longest delayMs: a hundred years, well inside what timestamptz can hold. */
export const MAX_DELAY_MS = 100 * 365 * 24 * 3600 * 1000;
const INT32_MAX = 2 ** 31 - 1;

// Control, surrogate, private-use and unassigned code points, and line/paragraph separators.
const UNPRINTABLE = /[\p{Cc}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

export function assertQueueName(name: unknown, what = "queue name"): asserts name is string {
  if (typeof name !== "string" || name.length === 0) {
    throw new ValidationError("INVALID_QUEUE_NAME", `${what} must be a non-empty string`);
  }
  if ([...name].length > MAX_QUEUE_NAME_LENGTH) {
    throw new ValidationError("INVALID_QUEUE_NAME", `${what} is longer than ${MAX_QUEUE_NAME_LENGTH} characters`);
  }
  if (UNPRINTABLE.test(name) || !name.isWellFormed()) {
    throw new ValidationError("INVALID_QUEUE_NAME", `${what} ${JSON.stringify(name)} contains a character that is not printable`);
  }
  if (name.trim() !== name) {
    throw new ValidationError("INVALID_QUEUE_NAME", `${what} ${JSON.stringify(name)} starts or ends with whitespace`);
  }
}

/**
 * Serialises a payload to the JSON text that will be stored, refusing what jsonb cannot hold
 * or would not give back unchanged: undefined, functions, bigints, cycles, NaN and Infinity,
 * the character \u0000, lone surrogates, documents nested deeper than MAX_PAYLOAD_DEPTH, and
 * anything over maxBytes once serialised.
 */
export function serializePayload(payload: unknown, maxBytes: number, what = "the payload"): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload, (_key, value: unknown) => {
      if (typeof value === "number" && !Number.isFinite(value)) {
        throw new ValidationError("INVALID_PAYLOAD", `${what} contains ${value}, which JSON cannot represent`);
      }
      if (typeof value === "bigint") {
        throw new ValidationError("INVALID_PAYLOAD", `${what} contains the BigInt ${value}n, which JSON cannot represent: send it as a string`);
      }
      return value;
    });
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    const reason = error instanceof RangeError ? "it is nested too deeply" : (error as Error).message;
    throw new ValidationError("INVALID_PAYLOAD", `${what} cannot be serialised to JSON: ${reason}`);
  }
  if (text === undefined) {
    throw new ValidationError("INVALID_PAYLOAD", `${what} must be a JSON value (got undefined or a function)`);
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) {
    throw new ValidationError(
      "PAYLOAD_TOO_LARGE",
      `${what} is ${bytes} bytes once serialised; the limit is ${maxBytes} (connect({ maxPayloadBytes }) changes it)`,
    );
  }
  assertJsonbCanHold(text);
  return text;
}

// One pass over the serialised text: JSON.stringify writes \u0000 and lone surrogates as
// escapes, which jsonb refuses, and its depth is what jsonb's recursive parser sees.
function assertJsonbCanHold(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x22) inString = false;
      else if (c === 0x5c) {
        if (text[i + 1] === "u") {
          const code = parseInt(text.slice(i + 2, i + 6), 16);
          if (code === 0) throw new ValidationError("INVALID_PAYLOAD", "the payload contains the character \\u0000, which PostgreSQL's jsonb cannot store");
          if (code >= 0xd800 && code <= 0xdfff) throw new ValidationError("INVALID_PAYLOAD", "the payload contains a lone UTF-16 surrogate, which is not valid Unicode text");
          i += 5;
        } else i += 1;
      }
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_PAYLOAD_DEPTH) {
        throw new ValidationError("INVALID_PAYLOAD", `the payload is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

export function assertInteger(value: unknown, name: string, min: number, max = INT32_MAX): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError("INVALID_OPTION", `${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
}

export function assertKey(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_KEY_LENGTH || value.includes("\u0000") || !value.isWellFormed()) {
    throw new ValidationError("INVALID_OPTION", `${name} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, without \\u0000`);
  }
}

export function assertDate(value: unknown, name: string): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new ValidationError("INVALID_OPTION", `${name} must be a valid Date`);
  }
}
