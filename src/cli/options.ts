// Parsers for option values. A value that does not parse is a usage error that names the
// option, raised before anything connects to the database.
import { InvalidArgumentError } from "commander";

const MAX_INT32 = 2 ** 31 - 1;

/** An integer from min to max, written in decimal digits (no "1e3", no "0x10", no "7.0"). */
export function integer(min: number, max = MAX_INT32): (value: string) => number {
  return (value) => {
    if (!/^[+-]?\d+$/.test(value.trim())) throw new InvalidArgumentError("it must be an integer.");
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`it must be from ${min} to ${max}.`);
    return n;
  };
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration in ms: "500ms", "30s", "5m", "2h", "7d". Bare digits are milliseconds only where
 * the option says MS; elsewhere a unit is required, so that "--older-than 7" cannot mean 7 ms.
 */
export function duration({ bareMs }: { bareMs: boolean }): (value: string) => number {
  return (value) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
    if (!match || (!match[2] && !bareMs)) {
      throw new InvalidArgumentError(`it must be a duration such as 500ms, 30s, 5m, 2h or 7d${bareMs ? ", or a number of milliseconds" : ""}.`);
    }
    const ms = Math.round(Number(match[1]) * UNITS[match[2] ?? "ms"]!);
    if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError("it is too long.");
    return ms;
  };
}

/** A point in time written in ISO 8601, such as 2030-01-31T09:00:00Z. */
export function isoDate(value: string): Date {
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim()) || Number.isNaN(date.getTime())) {
    throw new InvalidArgumentError("it must be an ISO 8601 date, such as 2030-01-31T09:00:00Z.");
  }
  return date;
}

/** A job id: a positive integer, kept as a string because ids are bigints. */
export function jobId(value: string, previous: string[] = []): string[] {
  if (!/^[1-9]\d{0,18}$/.test(value.trim()) || BigInt(value) > 2n ** 63n - 1n) {
    throw new InvalidArgumentError("it must be a job id (a positive integer).");
  }
  return [...previous, value.trim()];
}
