// Connections, and the one rule for waiting on them: never without a bound. postgres.js can
// leave a promise unsettled when a connection dies mid-transaction (porsager/postgres#1186),
// so every wait on the driver in a long-running loop goes through bounded().
import postgres, { type Options, type Sql } from "postgres";
import type { Logger } from "pino";
import { exponentialMs } from "../backoff.js";
import { DatabaseTimeoutError, PgqError } from "../errors.js";
import type { Pooler } from "../types.js";

export type PostgresOptions = Options<Record<string, postgres.PostgresType>>;

/** The bound on every statement of pgq's own loops (claim, renew, complete, fail, rescue, cron). */
export const STATEMENT_BOUND_MS = 15_000;

export function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DatabaseTimeoutError(what, ms)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** postgres.js's reconnect waits, in ms before jitter: 30, 90, 270, ... up to 2 s. */
const POOL_RECONNECT = { baseMs: 30, maxMs: 2_000, factor: 3 };

/** Options shared by every pool and listener pgq opens itself. */
export function poolOptions(log: Logger, overrides: PostgresOptions = {}): PostgresOptions {
  return {
    connect_timeout: 10,
    // postgres.js waits up to 20 s to reconnect after repeated failures, which after an outage
    // leaves workers idle that long; 2 s at most keeps recovery prompt and still far from a busy loop.
    backoff: (retries: number) => ((0.5 + Math.random() / 2) * exponentialMs(retries, POOL_RECONNECT)) / 1000,
    onnotice: (notice) => log.debug({ notice: notice.message }, "postgres notice"),
    connection: { application_name: "pgq" },
    ...overrides,
  };
}

/** A prepared statement lives in a server session, which a transaction-mode pooler hands to another client after each transaction. */
export function poolerOptions(pooler: Pooler | undefined): PostgresOptions {
  return pooler === "transaction" ? { prepare: false } : {};
}

export function openPool(url: string, log: Logger, overrides: PostgresOptions = {}): Sql {
  return postgres(url, poolOptions(log, overrides));
}

/** Where pgq may open connections of its own: a URL, or the options of the caller's pool. */
export type ConnectionSource = string | PostgresOptions;

/** A postgres.js instance for the same database as `source`, with `overrides` applied. */
export function openConnection(source: ConnectionSource, log: Logger, overrides: PostgresOptions): Sql {
  return typeof source === "string"
    ? postgres(source, poolOptions(log, overrides))
    : postgres({ ...source, ...overrides });
}

/** Where a pool connects, for error messages: host:port. */
export function describeTarget(sql: Sql): string {
  const { host, port } = sql.options as unknown as { host: string[]; port: number[] };
  return host.map((h, i) => `${h}:${port[i] ?? port[0]}`).join(",");
}

/** Runs `select 1` within a bound, turning failure into an error that names the host. */
export async function assertReachable(sql: Sql, timeoutMs = 10_000): Promise<void> {
  try {
    await bounded(sql`select 1`, timeoutMs, `connecting to PostgreSQL at ${describeTarget(sql)}`);
  } catch (error) {
    throw new PgqError(
      "DATABASE_UNREACHABLE",
      `cannot reach PostgreSQL at ${describeTarget(sql)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
