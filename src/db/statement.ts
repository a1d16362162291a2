// Statements as SQL text with $1, $2... placeholders and a list of parameters: the form that
// every PostgreSQL driver runs (postgres.js's unsafe, pg's query, Knex's and Kysely's raw SQL),
// so a statement built here can later run in a transaction of any of them. The insert of jobs
// is built this way (src/sql/insert-jobs.ts). Kysely's sql tag composes fragments too, but
// compiling one took 6-30 µs, a tenth of a one-job enqueue's client time; this takes about one.
import { ForeignExecutor, type Executor } from "./executor.js";
import { quoteIdent } from "./schema.js";

/** A piece of SQL whose values become parameters; fragments nest. */
export class Fragment {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly unknown[],
  ) {}
}

/** SQL text where each ${value} is a parameter, and each ${fragment} is spliced in. */
export function sqlText(strings: TemplateStringsArray, ...values: unknown[]): Fragment {
  return new Fragment(strings, values);
}

/** SQL text taken as written: for names already quoted, never for values. */
export function raw(text: string): Fragment {
  return new Fragment([text], []);
}

export const EMPTY = raw("");

/** A table or function in pgq's schema. */
export function qualified(schema: string, name: string): Fragment {
  return raw(`${quoteIdent(schema)}.${quoteIdent(name)}`);
}

export interface Statement {
  text: string;
  params: unknown[];
}

export function compile(fragment: Fragment): Statement {
  const params: unknown[] = [];
  return { text: append(fragment, params), params };
}

function append(fragment: Fragment, params: unknown[]): string {
  let text = fragment.strings[0]!;
  for (let i = 0; i < fragment.values.length; i++) {
    const value = fragment.values[i];
    text += (value instanceof Fragment ? append(value, params) : `$${params.push(value)}`) + fragment.strings[i + 1]!;
  }
  return text;
}

/**
 * Runs a statement on a postgres.js pool or transaction, of pgq's copy or another, or in another
 * library's transaction (db/executor.ts). On postgres.js, prepared, as tagged templates are,
 * unless the connection turns prepared statements off (behind a transaction-mode pooler).
 */
export function execute<Row>(sql: Executor, fragment: Fragment): Promise<Row[]> {
  const { text, params } = compile(fragment);
  if (sql instanceof ForeignExecutor) return sql.run<Row>(text, params);
  return sql.unsafe<Row[]>(text, params as never[], { prepare: true });
}
