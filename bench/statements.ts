// Statements per job, from pg_stat_statements: what each queue asks of PostgreSQL per job.
import { withDatabase } from "./server.js";

export async function resetStatements(url: string): Promise<void> {
  await withDatabase(url, (sql) => sql`select pg_stat_statements_reset()`);
}

export interface StatementCount {
  calls: number;
  /** Milliseconds spent executing it, all calls together (pg_stat_statements' total_exec_time). */
  totalMs: number;
  rows: number;
  query: string;
}

/** The statements run in this database since the last reset, most frequent first. */
export async function readStatements(url: string): Promise<StatementCount[]> {
  return withDatabase(url, (sql) =>
    sql<StatementCount[]>`
      select calls::int as calls, total_exec_time::float8 as "totalMs", rows::int as rows,
             regexp_replace(query, '\\s+', ' ', 'g') as query
      from pg_stat_statements
      where dbid = (select oid from pg_database where datname = current_database())
        and query not like '%pg_stat_statements%'
      order by calls desc`.then((rows) => [...rows]),
  );
}
