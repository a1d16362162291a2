// Where enqueue's statements run: pgq's own postgres.js, or the transaction of whatever library
// the application uses, so that a job commits or rolls back with the application's own writes.
// Statements are SQL text with $1, $2... and parameters (db/statement.ts), which every one of
// these libraries can run. Each is recognised by its shape, never by instanceof: the
// application's copy of a library is not pgq's, and may not even be the same version.
import { CompiledQuery } from "kysely";
import type { Sql, TransactionSql } from "postgres";
import { ValidationError } from "../errors.js";
import type { TransactionAdapter } from "../types.js";

type Row = Record<string, unknown>;
type Run = (text: string, params: unknown[]) => Promise<readonly Row[]>;

/** A caller's transaction of another library, reduced to running one statement. */
export class ForeignExecutor implements TransactionAdapter {
  constructor(
    /** The library, for error messages. */
    readonly kind: string,
    private readonly runStatement: Run,
  ) {}

  /**
   * pgq's statements return ids and queue names, which pgq hands out as strings. Libraries
   * differ on bigint (Prisma gives a BigInt, pg with a custom type parser a number), so every
   * number comes back as the text postgres.js and pg give by default.
   */
  async run<T>(text: string, params: unknown[]): Promise<T[]> {
    const rows = await this.runStatement(text, params);
    return rows.map((row) => {
      const out: Row = {};
      for (const [key, value] of Object.entries(row)) {
        out[key] = typeof value === "bigint" || typeof value === "number" ? String(value) : value;
      }
      return out as T;
    });
  }
}

/** pgq's own postgres.js, or a postgres.js of any copy (same path: `unsafe`), or another library's transaction. */
export type Executor = Sql | TransactionSql | ForeignExecutor;

/**
 * For a library pgq does not recognise: `run(text, params)` runs SQL with $1, $2... placeholders
 * in the caller's transaction and resolves to the rows.
 */
export function transactionAdapter(run: (text: string, params: unknown[]) => Promise<readonly Row[]>): TransactionAdapter {
  return new ForeignExecutor("a transactionAdapter", run);
}

const SUPPORTED =
  "a transaction or client of postgres.js, pg (Client, PoolClient or Pool), Kysely, Drizzle (node-postgres or postgres.js driver), " +
  "Knex, TypeORM (EntityManager or QueryRunner) or Prisma (the client $transaction passes), or pgq's transactionAdapter(run)";

/** The executor for `tx`, or pgq's pool without one; a ValidationError, before any SQL, for an object pgq cannot use. */
export function executorFor(tx: unknown, pool: Sql): Executor {
  if (tx === undefined || tx === null) return pool;
  const executor = recognise(tx);
  if (executor === undefined) {
    throw new ValidationError("INVALID_OPTION", `tx must be ${SUPPORTED}; got ${describe(tx)}`);
  }
  return executor;
}

function recognise(tx: unknown): Executor | undefined {
  if (tx instanceof ForeignExecutor) return tx;
  if (typeof tx !== "function" && (typeof tx !== "object" || tx === null)) return undefined;
  const o = tx as Record<string, unknown>;
  // postgres.js, from 3.4 on, of any copy: unsafe(text, params) is the same call as on pgq's
  // own pool, prepared unless the caller's connection turned preparing off.
  if (typeof tx === "function" && typeof o.unsafe === "function") return tx as TransactionSql;
  // Knex: bindings are positional `?`, so each $n becomes a `?` with its value in that place,
  // and any `?` of the text is escaped (Knex reads `\?` as a literal question mark).
  if (typeof tx === "function" && typeof o.raw === "function" && typeof o.client === "object") {
    const raw = o.raw as (text: string, bindings: unknown[]) => Promise<{ rows: Row[] }>;
    return new ForeignExecutor("Knex", async (text, params) => {
      const bindings: unknown[] = [];
      const knexText = text.replace(/\?|\$(\d+)/g, (_match, n: string | undefined) => {
        if (n === undefined) return "\\?";
        bindings.push(params[Number(n) - 1]);
        return "?";
      });
      return (await raw.call(tx, knexText, bindings)).rows;
    });
  }
  // Kysely's Transaction (or Kysely itself): a raw compiled query through its own executor, so
  // its plugins and its dialect's driver run it on the transaction's connection.
  if (typeof o.executeQuery === "function" && typeof o.selectFrom === "function") {
    const executeQuery = o.executeQuery as (query: CompiledQuery) => Promise<{ rows: Row[] }>;
    return new ForeignExecutor("Kysely", async (text, params) => (await executeQuery.call(tx, CompiledQuery.raw(text, params))).rows);
  }
  // Drizzle: its session holds the driver's client (for a transaction, the pg PoolClient it
  // checked out, or the postgres.js TransactionSql); Drizzle's own `execute` would need its
  // `sql` tag, of the application's copy of drizzle-orm.
  if (typeof o.execute === "function" && typeof o.session === "object" && o.session !== null && "client" in o.session) {
    const client = recognise((o.session as { client: unknown }).client);
    return client instanceof ForeignExecutor ? new ForeignExecutor(`Drizzle over ${client.kind}`, (text, params) => client.run(text, params)) : client;
  }
  // Prisma's interactive transaction client.
  if (typeof o.$queryRawUnsafe === "function") {
    const queryRaw = o.$queryRawUnsafe as (text: string, ...params: unknown[]) => Promise<Row[]>;
    return new ForeignExecutor("Prisma", (text, params) => queryRaw.call(tx, text, ...params));
  }
  // TypeORM marks its EntityManager with a symbol for checks across copies; a QueryRunner
  // carries its manager. Both return a SELECT's or an INSERT's rows as an array.
  const entityManager = Symbol.for("EntityManager");
  if (typeof o.query === "function" && (o["@instanceof"] === entityManager || (o.manager as Record<string, unknown> | undefined)?.["@instanceof"] === entityManager)) {
    const query = o.query as (text: string, params: unknown[]) => Promise<Row[]>;
    return new ForeignExecutor("TypeORM", (text, params) => query.call(tx, text, params));
  }
  // pg: a Client or PoolClient (escapeIdentifier), or a Pool (connect and totalCount).
  if (typeof o.query === "function" && (typeof o.escapeIdentifier === "function" || (typeof o.connect === "function" && "totalCount" in o))) {
    const query = o.query as (text: string, params: unknown[]) => Promise<{ rows: Row[] }>;
    return new ForeignExecutor("pg", async (text, params) => (await query.call(tx, text, params)).rows);
  }
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === "function") return `a function${value.name ? ` named ${value.name}` : ""}`;
  if (typeof value !== "object" || value === null) return typeof value;
  const name = (value as object).constructor?.name;
  return name && name !== "Object" ? `an instance of ${name}` : "an object";
}
