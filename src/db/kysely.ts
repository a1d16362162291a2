// Kysely builds the typed queries of the operator surface (stats, inspect, dead-job
// management); postgres.js runs them, so there is one driver and one pool. The hot path
// (claim, complete, renew, fail) stays on postgres.js tagged templates.
import {
  sql as k,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type Compilable,
  type Generated,
  type RawBuilder,
} from "kysely";
import type { Sql, TransactionSql } from "postgres";
import { Fragment } from "./statement.js";

export interface JobsTable {
  id: Generated<string>;
  queue: string;
  payload: unknown;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: number;
  backoff_max_ms: number;
  timeout_ms: number | null;
  dedupe_key: string | null;
  group_key: string | null;
  trace_context: string | null;
  locked_by: string | null;
  locked_until: Date | null;
  lease_token: string | null;
  last_error: string | null;
  errors: unknown;
  created_at: Date;
}

export interface DeadJobsTable {
  id: string;
  queue: string;
  payload: unknown;
  priority: number;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: number;
  backoff_max_ms: number;
  timeout_ms: number | null;
  dedupe_key: string | null;
  group_key: string | null;
  trace_context: string | null;
  last_error: string | null;
  errors: unknown;
  created_at: Date;
  died_at: Date;
  reason: "failed" | "expired";
}

export interface Database {
  jobs: JobsTable;
  dead_jobs: DeadJobsTable;
}

export function queryBuilder(schema: string): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  }).withSchema(schema);
}

/** Runs a Kysely query on a postgres.js pool or transaction. */
export async function run<Row>(sql: Sql | TransactionSql, query: Compilable<Row>): Promise<Row[]> {
  const compiled = query.compile();
  return (await sql.unsafe(compiled.sql, compiled.parameters as never[])) as unknown as Row[];
}

/** A statement fragment (db/statement.ts) inside a Kysely query: its values stay parameters. */
export function fromFragment<T>(fragment: Fragment): RawBuilder<T> {
  return k<T>(fragment.strings as unknown as TemplateStringsArray, ...fragment.values.map((v) => (v instanceof Fragment ? fromFragment(v) : v)));
}
