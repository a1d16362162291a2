// The database side of every command: which database, a logger, and a connected Queue that
// fails fast (a few seconds, naming host and port) when the database cannot be reached.
import { pino, type Logger } from "pino";
import { connect, type Queue } from "../client.js";
import { assertReachable, openPool, poolerOptions, type PostgresOptions } from "../db/connections.js";
import type { Pooler } from "../types.js";
import { UsageError } from "./errors.js";
import { readableLines, type LogFormat } from "./log-lines.js";
import type { StatusLine } from "./status-line.js";

/** Options every command accepts. */
export interface GlobalOptions {
  databaseUrl?: string;
  schema: string;
  logLevel?: string;
  logFormat?: LogFormat;
  pooler?: Pooler;
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** connect() waits up to 10 s for the database; an operator at a terminal should hear sooner. */
const REACHABLE_WITHIN_MS = 4000;

export interface Session {
  q: Queue;
  log: Logger;
  close(): Promise<void>;
}

export function databaseUrl(globals: GlobalOptions): string {
  const url = globals.databaseUrl ?? process.env.DATABASE_URL;
  if (!url) throw new UsageError("no database given: set DATABASE_URL or pass --database-url postgres://user@host:port/db");
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError("the database URL must start with postgres:// or postgresql://");
  return url;
}

/**
 * Logs go to stderr (stdout carries command output), through the status line if there is one:
 * readable lines on a terminal, pino's JSON lines elsewhere or with --log-format json.
 */
export function createLogger(globals: GlobalOptions, defaultLevel: string, status?: StatusLine): Logger {
  const level = globals.logLevel ?? defaultLevel;
  const format = globals.logFormat ?? (process.stderr.isTTY ? "pretty" : "json");
  if (format === "json" && !status?.enabled) return pino({ level }, pino.destination({ fd: 2, sync: true }));
  const print = status?.enabled ? (line: string) => status.print(line) : (line: string) => process.stderr.write(`${line}\n`);
  const destination = format === "pretty"
    ? readableLines(print, level === "debug" || level === "trace")
    : { write: (record: string) => print(record.trimEnd()) };
  return pino({ level }, destination);
}

/** Opens a pool of `poolSize` connections (a worker needs concurrency + 1), with `overrides`, and connects. */
export async function openSession(globals: GlobalOptions, log: Logger, poolSize = 4, overrides: PostgresOptions = {}): Promise<Session> {
  const sql = openPool(databaseUrl(globals), log, { max: poolSize, ...poolerOptions(globals.pooler), ...overrides });
  let q: Queue;
  try {
    await assertReachable(sql, REACHABLE_WITHIN_MS);
    q = await connect({ sql, schema: globals.schema, logger: log, pooler: globals.pooler });
  } catch (error) {
    await sql.end({ timeout: 0 });
    throw error;
  }
  return {
    q,
    log,
    async close() {
      await q.close();
      await sql.end({ timeout: 5 });
    },
  };
}

/** Runs `fn` with a session, and closes it whatever happens. */
export async function withSession<T>(globals: GlobalOptions, log: Logger, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession(globals, log);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}
