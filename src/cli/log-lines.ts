// How pgq's log records read on a terminal: one line each, for a person. A failed attempt reads
//
//   12:00:01 WARN  emails #1042 attempt 2/25: job failed; it will be retried in 2.1 s: Error: boom
//
// and its stack follows, indented, only at --log-level debug or trace. Off a terminal (or with
// --log-format json) records stay pino's JSON lines, for log collectors; this is a pino
// destination, so nothing else about logging changes.
import type { DestinationStream } from "pino";

export type LogFormat = "pretty" | "json";
export const LOG_FORMATS: LogFormat[] = ["pretty", "json"];

interface LogRecord {
  level: number;
  time: number;
  msg?: string;
  queue?: string;
  jobId?: string;
  attempt?: number;
  maxAttempts?: number;
  retryInMs?: number;
  err?: { type?: string; message?: string; code?: string | number; stack?: string };
  [key: string]: unknown;
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** Bound into every record, or shown in the line's own places. */
const NOT_SHOWN_AS_FIELDS = new Set(["level", "time", "msg", "pid", "hostname", "worker", "queue", "jobId", "attempt", "maxAttempts", "retryInMs", "err"]);

/** A destination that writes each JSON record as one readable line through `print`. */
export function readableLines(print: (line: string) => void, showStacks: boolean): DestinationStream {
  return { write: (json: string) => print(readableLine(JSON.parse(json) as LogRecord, showStacks)) };
}

export function readableLine(r: LogRecord, showStacks: boolean): string {
  const time = new Date(r.time).toTimeString().slice(0, 8);
  const level = (LEVELS[r.level] ?? String(r.level)).padEnd(5);
  const job = r.jobId === undefined ? "" : `${r.queue ?? "?"} #${r.jobId}${r.attempt === undefined ? "" : ` attempt ${r.attempt}${r.maxAttempts ? `/${r.maxAttempts}` : ""}`}: `;
  const retry = r.retryInMs === undefined ? "" : ` in ${seconds(r.retryInMs)}`;
  const error = r.err ? `: ${r.err.type ?? "Error"}${r.err.code === undefined ? "" : ` [${r.err.code}]`}: ${firstLine(r.err.message ?? "")}` : "";
  const fields = Object.entries(r)
    .filter(([key]) => !NOT_SHOWN_AS_FIELDS.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  const line = `${time} ${level} ${job}${r.msg ?? ""}${retry}${error}${fields.length ? ` (${fields.join(", ")})` : ""}`;
  if (!showStacks || !r.err?.stack) return line;
  return `${line}\n${r.err.stack.split("\n").map((l) => `    ${l}`).join("\n")}`;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!;
}
