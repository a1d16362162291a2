import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import postgres from "postgres";
import { runCli } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";

const { url } = await freshDatabase();
const db = postgres(url, { max: 2, onnotice: () => {} });
test.after(() => db.end());
const pgq = (args: string[], input?: string) => runCli(args, { databaseUrl: url, input });

async function jobCount(): Promise<number> {
  const [row] = await db`select count(*)::int as n from pgq.jobs`;
  return row!.n;
}

test("enqueue prints the new job's id and stores payload and options", async () => {
  const r = await pgq(["enqueue", "emails", '{"to":"ada@example.com"}', "--priority", "-3", "--max-attempts", "4", "--dedupe-key", "k1", "--group", "g1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+\n$/);
  const [job] = await db`select * from pgq.jobs where id = ${r.stdout.trim()}`;
  assert.deepEqual(job!.payload, { to: "ada@example.com" });
  assert.equal(job!.priority, -3);
  assert.equal(job!.max_attempts, 4);
  assert.equal(job!.dedupe_key, "k1");
  assert.equal(job!.group_key, "g1");
  assert.equal(r.stderr, "");
});

test("--delay and --run-at schedule the job; the payload can come from stdin", async () => {
  const delayed = await pgq(["enqueue", "later", "{}", "--delay", "90s"]);
  const at = await pgq(["enqueue", "later", "-", "--run-at", "2031-01-31T09:00:00Z"], '{"from":"stdin"}');
  assert.equal(delayed.code, 0, delayed.stderr);
  assert.equal(at.code, 0, at.stderr);
  const rows = await db`select id, payload, extract(epoch from run_at - now()) as due_in, run_at from pgq.jobs where queue = 'later' order by id`;
  assert.ok(Number(rows[0]!.due_in) > 80 && Number(rows[0]!.due_in) <= 90);
  assert.deepEqual(rows[1]!.payload, { from: "stdin" });
  assert.equal((rows[1]!.run_at as Date).toISOString(), "2031-01-31T09:00:00.000Z");
});

test("--expires-at and --ttl (from when the job is due) set its expiry", async () => {
  const at = await pgq(["enqueue", "expiring", "{}", "--expires-at", "2031-01-31T09:00:00Z"]);
  const ttl = await pgq(["enqueue", "expiring", "{}", "--delay", "1h", "--ttl", "10m"]);
  assert.equal(at.code, 0, at.stderr);
  assert.equal(ttl.code, 0, ttl.stderr);
  const [a, b] = await db`select expires_at, extract(epoch from expires_at - run_at)::int as ttl_s from pgq.jobs where queue = 'expiring' order by id`;
  assert.equal((a!.expires_at as Date).toISOString(), "2031-01-31T09:00:00.000Z");
  assert.equal(b!.ttl_s, 600);
});

test("hostile queue names and payloads are stored verbatim, never run as SQL", async () => {
  const queue = `x'); drop table pgq.jobs; --"; ü 🚀`;
  const r = await pgq(["enqueue", queue, JSON.stringify({ sql: "'; delete from pgq.jobs; --" })]);
  assert.equal(r.code, 0, r.stderr);
  const [job] = await db`select queue, payload from pgq.jobs where id = ${r.stdout.trim()}`;
  assert.equal(job!.queue, queue);
  assert.deepEqual(job!.payload, { sql: "'; delete from pgq.jobs; --" });
  const inspect = await pgq(["inspect", "--json", "--queue", queue]);
  assert.equal(JSON.parse(inspect.stdout).queues[0].ready, 1);
});

test("--file enqueues one job per line in one transaction and prints the ids", async () => {
  const file = join(tmpdir(), `pgq-cli-${process.pid}.ndjson`);
  const lines = Array.from({ length: 2500 }, (_, i) => JSON.stringify({ i }));
  await writeFile(file, lines.join("\n") + "\n\n");
  const r = await pgq(["enqueue", "bulk", "--file", file]);
  assert.equal(r.code, 0, r.stderr);
  const ids = r.stdout.trim().split("\n");
  assert.equal(ids.length, 2500);
  const [row] = await db`select count(*)::int as n, min(payload->>'i')::int as lo from pgq.jobs where queue = 'bulk'`;
  assert.equal(row!.n, 2500);
  const fromStdin = await pgq(["enqueue", "bulk-stdin", "--file", "-"], '{"a":1}\n{"a":2}\n');
  assert.equal(fromStdin.stdout.trim().split("\n").length, 2);
});

test("a bad line anywhere in --file writes nothing", async () => {
  const file = join(tmpdir(), `pgq-cli-bad-${process.pid}.ndjson`);
  const lines = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ i }));
  lines[1400] = "{oops";
  await writeFile(file, lines.join("\n"));
  const before = await jobCount();
  const r = await pgq(["enqueue", "bulk-bad", "--file", file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^pgq: .*line 1401 is not valid JSON/);
  assert.equal(await jobCount(), before);
});

const usageErrors: [string, string[], RegExp][] = [
  ["bad JSON", ["enqueue", "q", "{nope"], /the payload is not valid JSON/],
  ["unknown option", ["enqueue", "q", "{}", "--priorty", "1"], /unknown option '--priorty'/],
  ["unknown command", ["enqueu", "q", "{}"], /unknown command 'enqueu'/],
  ["a number that is not one", ["enqueue", "q", "{}", "--priority", "high"], /--priority.*'high' is invalid.*integer/],
  ["a fractional number", ["enqueue", "q", "{}", "--max-attempts", "2.5"], /--max-attempts.*integer/],
  ["a negative count", ["enqueue", "q", "{}", "--max-attempts", "-1"], /--max-attempts.*'-1' is invalid/],
  ["a zero count", ["enqueue", "q", "{}", "--max-attempts", "0"], /--max-attempts/],
  ["a bad date", ["enqueue", "q", "{}", "--run-at", "tomorrow"], /--run-at.*ISO 8601/],
  ["--run-at with --delay", ["enqueue", "q", "{}", "--run-at", "2030-01-01", "--delay", "5"], /cannot be used with/],
  ["--expires-at with --ttl", ["enqueue", "q", "{}", "--expires-at", "2030-01-01", "--ttl", "5m"], /cannot be used with/],
  ["a bad expiry date", ["enqueue", "q", "{}", "--expires-at", "never"], /--expires-at.*ISO 8601/],
  ["a ttl without a unit", ["enqueue", "q", "{}", "--ttl", "5"], /--ttl.*duration/],
  ["a zero ttl", ["enqueue", "q", "{}", "--ttl", "0s"], /ttlMs/],
  ["a queue name the core rejects", ["enqueue", " padded", "{}"], /starts or ends with whitespace/],
  ["an empty queue name", ["enqueue", "", "{}"], /non-empty/],
  ["a payload jsonb cannot hold", ["enqueue", "q", '{"a":"\\u0000"}'], /\\u0000/],
  ["no payload at all", ["enqueue", "q"], /give the payload/],
  ["a missing --file", ["enqueue", "q", "--file", "/nonexistent/jobs.ndjson"], /cannot read \/nonexistent\/jobs.ndjson/],
];

for (const [what, args, message] of usageErrors) {
  test(`usage error, exit 2, one line, nothing written: ${what}`, async () => {
    const before = await jobCount();
    const r = await pgq(args);
    assert.equal(r.code, 2, `${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^pgq: [^\n]+\n$/, "one line, no stack trace");
    assert.equal(r.stdout, "");
    assert.equal(await jobCount(), before);
  });
}

test("no database configured is a usage error", async () => {
  const r = await runCli(["enqueue", "q", "{}"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^pgq: no database given: set DATABASE_URL/);
});

test("an unreachable database is exit 1 within a few seconds, naming host and port", async () => {
  // A port nobody listens on, and an address that drops packets (the connection never opens).
  for (const target of ["127.0.0.1:9", "10.255.255.1:5432"]) {
    const r = await runCli(["enqueue", "q", "{}"], { databaseUrl: `postgres://pgq@${target}/pgq`, timeoutMs: 15_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^pgq: cannot reach PostgreSQL at ${target.replace(/\./g, "\\.")}[^\n]*\n$`));
    assert.ok(r.ms < 8000, `took ${r.ms} ms`);
  }
});

test("the schema not migrated is exit 1 and one line with what to do", async () => {
  const bare = await freshDatabase({ migrated: false });
  for (const args of [["inspect"], ["enqueue", "q", "{}"], ["dead", "list"]]) {
    const r = await runCli(args, { databaseUrl: bare.url });
    assert.equal(r.code, 1, `pgq ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^pgq: pgq's schema "pgq" is missing from this database or out of date: run `pgq migrate`[^\n]*\n$/);
  }
});
