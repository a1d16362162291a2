// A view's definition as PostgreSQL 16 and later deparse it, whatever the server's version.
//
// Up to 15, a view's stored query carried two extra range-table entries (OLD and NEW), so
// pg_get_viewdef qualified every column of a view over one relation (`SELECT t.id FROM t`); from
// 16 it does not (`SELECT id FROM t`). Columns in subqueries, and in views over several
// relations, are qualified on both. So the older text is brought to the newer form by dropping
// the sole relation's name before the columns of the outermost query, and nothing else.

interface Token {
  text: string;
  index: number;
  /** Parentheses around it. */
  depth: number;
  /** Inside a parenthesised SELECT, WITH or VALUES. */
  inSubquery: boolean;
  /** For "(": what it opens is a subquery. */
  opensSubquery: boolean;
}

const TOKEN = /'(?:[^']|'')*'|"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*|\d+(?:\.\d+)?|\S/g;
const IDENTIFIER = /^(?:"|[A-Za-z_])/;
const SET_OPERATIONS = new Set(["UNION", "INTERSECT", "EXCEPT"]);
/** What may follow a FROM clause in the deparsed text. */
const AFTER_FROM = new Set(["WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR"]);

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const open: boolean[] = [];
  for (const match of sql.matchAll(TOKEN)) {
    const text = match[0];
    if (text === ")") open.pop();
    const opensSubquery = text === "(" && /^\s*(?:SELECT|WITH|VALUES)\b/.test(sql.slice(match.index + 1));
    tokens.push({ text, index: match.index, depth: open.length, inSubquery: open.includes(true), opensSubquery });
    if (text === "(") open.push(opensSubquery);
  }
  return tokens;
}

export function viewDefinition(def: string): string {
  const outer = tokenize(def).filter((t) => !t.inSubquery);
  if (outer.some((t) => SET_OPERATIONS.has(t.text))) return def;
  const from = outer.findIndex((t) => t.text === "FROM" && t.depth === 0);
  if (from < 0) return def;
  const found = outer.findIndex((t, i) => i > from && t.depth === 0 && AFTER_FROM.has(t.text));
  const end = found < 0 ? outer.length : found;
  const clause = outer.slice(from + 1, end).filter((t) => t.depth === 0);
  const joined = clause.some((t) => t.text === "," || t.text === "JOIN") || (clause[0]?.text === "(" && !clause[0].opensSubquery);
  if (joined) return def;
  const refname = clause.filter((t) => IDENTIFIER.test(t.text)).pop()?.text;
  if (!refname) return def;
  let result = def;
  // Backwards, so that earlier indexes stay valid; the FROM clause itself is left as it is.
  for (let i = outer.length - 3; i > 0; i--) {
    if (i >= from && i < end) continue;
    const [before, name, dot, column] = [outer[i - 1]!, outer[i]!, outer[i + 1]!, outer[i + 2]!];
    if (name.text === refname && before.text !== "." && dot.text === "." && IDENTIFIER.test(column.text)) {
      result = result.slice(0, name.index) + result.slice(column.index);
    }
  }
  return result;
}
