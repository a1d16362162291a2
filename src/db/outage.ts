// Which errors say that the database failed rather than the job: a read-only database (as after
// a failover to a replica), a server going down or refusing connections. The worker then gives
// the job no backoff: it runs again as soon as the database takes work. The attempt the claim
// counted stays counted, so a job that itself brings the database down still reaches dead_jobs.
//
// Only what the server says about itself is listed. A connection that merely closed is not: the
// server also closes the session of a job that idles in its transaction too long
// (idle_in_transaction_session_timeout), and that is the job's failure.

/** SQLSTATEs of a database that cannot take the job's work now, whatever the job. */
const OUTAGE_SQLSTATES = new Set([
  "25006", // read_only_sql_transaction: a read-only database, as after a failover to a replica
  "57P01", // admin_shutdown: the server is shutting down, or the session was terminated
  "57P02", // crash_shutdown: another backend crashed and the server is restarting
  "57P03", // cannot_connect_now: the server is starting up or shutting down
  "53300", // too_many_connections
]);

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** The error, or one of its causes (a handler may wrap the driver's error), as a SQLSTATE. */
function sqlStates(error: unknown): string[] {
  const states: string[] = [];
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const state = sqlState(e);
    if (state) states.push(state);
  }
  return states;
}

/** True if the database failed: read-only, shutting down, or refusing connections (class 08 too). */
export function isDatabaseOutage(error: unknown): boolean {
  return sqlStates(error).some((s) => OUTAGE_SQLSTATES.has(s) || s.startsWith("08"));
}

/**
 * True if the session refused a write because it is read-only. A session keeps the
 * default_transaction_read_only it started with, so one opened while the database was
 * read-only stays so after the database reverts: the connection must be replaced.
 */
export function isReadOnlyError(error: unknown): boolean {
  return sqlStates(error).includes("25006");
}

/**
 * True if the server refused a connection for want of slots: max_connections reached ("sorry,
 * too many clients already"), the last ones kept for superusers or reserved roles ("remaining
 * connection slots are reserved ..."), or a role's or database's CONNECTION LIMIT. All are
 * 53300; the message is matched too, for errors that lost their code on the way.
 */
export function isTooManyConnections(error: unknown): boolean {
  if (sqlStates(error).includes("53300")) return true;
  return error instanceof Error && /too many clients already|remaining connection slots are reserved/.test(error.message);
}
