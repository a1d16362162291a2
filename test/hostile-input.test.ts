// Hostile and malformed input, as one matrix: every case through every way into pgq (the
// library's enqueue, enqueueMany, publish and schedule; the SQL function with parameters and as
// literal SQL text, as psql sends it; `pgq enqueue` with an argument, stdin and --file). Each
// either round-trips exactly or is refused with a named error and writes nothing; then a
// real `pgq work` runs every stored job, and its handler gets the payload as stored.
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ValidationError, type PgqErrorCode } from "../src/index.js";
import { runCli } from "./helpers/cli.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const { q, db, url } = await testQueue();
await db`create table received (job_id bigint primary key, queue text not null, payload_json text not null)`;

type ValidationCode = Extract<PgqErrorCode, "INVALID_QUEUE_NAME" | "INVALID_PAYLOAD" | "PAYLOAD_TOO_LARGE">;
type Path =
  | "enqueue" | "enqueueMany" | "publish" | "schedule"
  | "SQL function, parameters" | "SQL function, literal SQL"
  | "pgq enqueue <json>" | "pgq enqueue - (stdin)" | "pgq enqueue --file";

interface Case {
  what: string;
  queue: string;
  /** The payload as JSON text: what the SQL function and the CLI are given. */
  json: string;
  /** What the library is given: JSON.parse(json), or nothing when the text is not JSON. */
  value?: unknown;
  library: "stored" | ValidationCode;
  /** "stored", or the SQLSTATE PostgreSQL refuses it with. */
  sql: "stored" | string;
  cli: "stored" | RegExp;
  /** Paths that cannot carry this input at all, and why. */
  skip?: Partial<Record<Path, string>>;
}

const PAYLOAD = '{"q":1}';
const LIMIT = 1024 * 1024;
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
/** A JSON string of 2-byte characters, `bytes` long once serialised. */
const bigString = (bytes: number) => `"${"é".repeat(Math.floor((bytes - 2) / 2))}${bytes % 2 ? "x" : ""}"`;

function stored(what: string, json: string, queue = "hostile"): Case {
  return { what, queue, json, value: JSON.parse(json), library: "stored", sql: "stored", cli: "stored" };
}

function refused(what: string, json: string, library: ValidationCode, cli: RegExp, sql: string, queue = "hostile"): Case {
  return { what, queue, json, value: JSON.parse(json), library, sql, cli };
}

const VALUES_ONLY = "the library takes values, not JSON text";

function notJson(what: string, json: string, skip: Case["skip"] = {}): Case {
  return {
    what, queue: "hostile", json, library: "stored", sql: "22P02", cli: /is not valid JSON/,
    skip: { enqueue: VALUES_ONLY, enqueueMany: VALUES_ONLY, publish: VALUES_ONLY, schedule: VALUES_ONLY, ...skip },
  };
}

const NO_NUL_IN_ARGV = "a command-line argument cannot hold \\u0000";
// pgq.enqueue checks queue names as the library does (migration 000005) and refuses them with 22023.
const QUEUE_NAME_SQLSTATE = "22023";

const cases: Case[] = [
  stored("quotes, semicolons, backslashes and SQL in the payload",
    JSON.stringify({ sql: "x'); drop table pgq.jobs; --", quote: '"', backslash: "\\", dollar: "$$ $1 ${x}", pct: "%s %n" })),
  stored("unicode: astral, combining, right-to-left, BOM, line separators",
    JSON.stringify({ s: "🚀 e\u0301 \u202e שלום \ufeff \u2028 \u2029", "ключ 🔑": "値" })),
  stored("control characters, escaped", JSON.stringify({ s: "\u0001\u001f\u007f\n\t\r\b" })),
  stored("a surrogate pair written as escapes", '"\\ud83d\\ude80"'),
  stored("null", "null"),
  refused("\\u0000 in a string", '{"s":"a\\u0000b"}', "INVALID_PAYLOAD", /\\u0000/, "22P05"),
  refused("\\u0000 in a key", '{"k\\u0000":1}', "INVALID_PAYLOAD", /\\u0000/, "22P05"),
  refused("a lone high surrogate", '{"s":"\\ud800"}', "INVALID_PAYLOAD", /lone UTF-16 surrogate/, "22P02"),
  refused("a lone low surrogate after text", '["x\\udc00"]', "INVALID_PAYLOAD", /lone UTF-16 surrogate/, "22P02"),
  notJson("invalid JSON: a trailing comma", '{"a":1,}'),
  notJson("invalid JSON: two documents", "{} {}"),
  notJson("empty text", "", { "pgq enqueue --file": "--file skips blank lines" }),
  stored("nested 1,000 deep (the limit)", nested(1000)),
  // jsonb holds deeper documents, and a worker reads them: the library's limit is its own.
  { ...refused("nested 1,001 deep", nested(1001), "INVALID_PAYLOAD", /nested more than 1000 levels/, ""), sql: "stored" },
  refused("nested 20,000 deep", nested(20_000), "INVALID_PAYLOAD", /nested (more than 1000 levels|too deeply)/, "54001"),
  // Numbers: the library stores its value as JSON.stringify writes it (JSON.parse rounded
  // 2^53 + 1 before the library saw it); the CLI sees the text, and refuses a number that would
  // not stay as written; jsonb stores the SQL function's exactly (see the worker test).
  stored("ordinary fractions and exponents", '{"price":19.99,"ratio":1.50,"small":1e-7,"big":-2.5E+300,"zero":-0.0}'),
  { ...stored("an integer beyond 2^53", '{"n":9007199254740993}'), cli: /the number 9007199254740993, which a JavaScript number does not hold as written \(it would become 9007199254740992\)/ },
  { ...stored("2^60 in full (a double holds it, but writes it 1152921504606847000)", '{"n":1152921504606846976}'), cli: /the number 1152921504606846976, .* \(it would become 1152921504606847000\)/ },
  { ...stored("a fraction with more digits than a double holds", '[0.1000000000000000055511151231257827]'), cli: /the number 0\.1000000000000000055511151231257827, .* \(it would become 0\.1\)/ },
  { ...refused("a number beyond a double's range", '{"n":1e400}', "INVALID_PAYLOAD", /beyond the range of a JavaScript number/, ""), sql: "stored" },
  { ...stored("exactly at the size limit, in 2-byte characters", bigString(LIMIT)), skip: { "pgq enqueue <json>": "Linux caps one argument at 128 KiB" } },
  {
    ...refused("one byte over the size limit", bigString(LIMIT + 1), "PAYLOAD_TOO_LARGE", /1048577 bytes once serialised; the limit is 1048576/, "54000"),
    skip: { "pgq enqueue <json>": "Linux caps one argument at 128 KiB" },
  },
  stored("quotes and semicolons in the queue name", PAYLOAD, `x'); drop table pgq.jobs; --"`),
  stored("backslashes and dollar quotes in the queue name", PAYLOAD, "a\\b $$ $1 %s"),
  stored("a unicode queue name", PAYLOAD, "émoji 🚀 名前 עברית"),
  stored("a queue name of 128 astral characters (512 bytes)", PAYLOAD, "🚀".repeat(128)),
  refused("a queue name of 200 characters", PAYLOAD, "INVALID_QUEUE_NAME", /longer than 128 characters/, QUEUE_NAME_SQLSTATE, "q".repeat(200)),
  refused("an empty queue name", PAYLOAD, "INVALID_QUEUE_NAME", /non-empty/, QUEUE_NAME_SQLSTATE, ""),
  refused("a newline in the queue name", PAYLOAD, "INVALID_QUEUE_NAME", /not printable/, QUEUE_NAME_SQLSTATE, "a\nb"),
  refused("leading whitespace in the queue name", PAYLOAD, "INVALID_QUEUE_NAME", /starts or ends with whitespace/, QUEUE_NAME_SQLSTATE, " padded"),
  refused("a line separator (U+2028) in the queue name", PAYLOAD, "INVALID_QUEUE_NAME", /not printable/, QUEUE_NAME_SQLSTATE, "a\u2028b"),
  {
    ...refused("\\u0000 in the queue name", PAYLOAD, "INVALID_QUEUE_NAME", /not printable/, "22021", "a\u0000b"),
    skip: {
      "SQL function, literal SQL": "SQL text cannot hold a NUL byte",
      "pgq enqueue <json>": NO_NUL_IN_ARGV, "pgq enqueue - (stdin)": NO_NUL_IN_ARGV, "pgq enqueue --file": NO_NUL_IN_ARGV,
    },
  },
];

/** What one path wrote: job ids, or the schedule it defined. */
interface Written {
  jobIds: string[];
  schedule?: string;
}

const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;
let serial = 0;

/** The ways into pgq. Each throws what that path throws, or returns what it wrote. */
const paths: Record<Path, (c: Case) => Promise<Written>> = {
  enqueue: async (c) => ({ jobIds: [(await q.enqueue(c.queue, c.value)).id] }),
  // A valid neighbour in the batch: a refusal must leave it out too.
  enqueueMany: async (c) => ({ jobIds: (await q.enqueueMany(c.queue, [c.value, { neighbour: true }])).slice(0, 1) }),
  publish: async (c) => {
    const topic = `hostile.t${++serial}`;
    await q.subscribe(c.queue, topic);
    return { jobIds: await q.publish(topic, c.value) };
  },
  schedule: async (c) => {
    const name = `hostile-${++serial}`;
    await q.schedule(name, "0 0 1 1 *", c.queue, c.value);
    return { jobIds: [], schedule: name };
  },
  "SQL function, parameters": async (c) => {
    // A parameter typed jsonb would be JSON-encoded once more by postgres.js: send text, as any client can.
    const [row] = await db`select pgq.enqueue(${c.queue}, ${c.json}::text::jsonb) as id`;
    return { jobIds: [row!.id] };
  },
  "SQL function, literal SQL": async (c) => {
    const [row] = await db.unsafe(`select pgq.enqueue(${literal(c.queue)}, ${literal(c.json)}) as id`).simple();
    return { jobIds: [row!.id] };
  },
  "pgq enqueue <json>": (c) => cli(["enqueue", c.queue, c.json]),
  "pgq enqueue - (stdin)": (c) => cli(["enqueue", c.queue, "-"], c.json),
  "pgq enqueue --file": async (c) => {
    const file = join(tmpdir(), `pgq-hostile-${process.pid}-${++serial}.ndjson`);
    await writeFile(file, c.json + "\n");
    try {
      return await cli(["enqueue", c.queue, "--file", file]);
    } finally {
      await rm(file, { force: true });
    }
  },
};

class CliRefused extends Error {
  constructor(readonly stdout: string, readonly stderr: string) {
    super(stderr);
  }
}

async function cli(args: string[], input?: string): Promise<Written> {
  const r = await runCli(args, { databaseUrl: url, input, timeoutMs: 60_000 });
  if (r.code === 2) throw new CliRefused(r.stdout, r.stderr);
  assert.equal(r.code, 0, `pgq ${args[0]} exited ${r.code}: ${r.stderr}`);
  assert.match(r.stdout, /^\d+\n$/);
  return { jobIds: [r.stdout.trim()] };
}

const library = new Set<Path>(["enqueue", "enqueueMany", "publish", "schedule"]);
const kind = (path: Path) => (library.has(path) ? "library" : path.startsWith("SQL") ? "sql" : "cli");

async function footprint() {
  const [row] = await db`
    select (select count(*) from pgq.jobs)::int as jobs, (select count(*) from pgq.dead_jobs)::int as dead,
           (select count(*) from pgq.schedules)::int as schedules`;
  return row;
}

async function undo(written: Written) {
  await db`delete from pgq.jobs where id = any(${written.jobIds}::bigint[])`;
  if (written.schedule) await q.unschedule(written.schedule);
}

/** Jobs that round-tripped, for the worker test: their case and the JSON they were stored from. */
const storedJobs: { id: string; what: string; path: Path; json: string }[] = [];

/** One case through one path: stored exactly, or refused with its named error and nothing written. */
function check(c: Case, path: Path): void {
  const expected = { library: c.library, sql: c.sql, cli: c.cli }[kind(path)];
  const skip = c.skip?.[path];
  test(path, { skip }, async () => {
    const before = await footprint();
    const outcome = await paths[path](c).then((written) => ({ written }), (error: unknown) => ({ error }));
    if (expected === "stored") {
      if ("error" in outcome) throw outcome.error;
      const { written } = outcome;
      // What this path stores: the library serialises the value it was given; the others keep the text.
      const json = library.has(path) ? JSON.stringify(c.value) : c.json;
      if (written.schedule) {
        const [row] = await db`select queue, payload = ${json}::text::jsonb as exact from pgq.schedules where name = ${written.schedule}`;
        assert.deepEqual(row, { queue: c.queue, exact: true });
        await undo(written);
        return;
      }
      assert.equal(written.jobIds.length, 1);
      const [row] = await db`
        select queue, payload = ${json}::text::jsonb as exact, left(payload::text, 100) as head
        from pgq.jobs where id = ${written.jobIds[0]!}`;
      assert.equal(row?.queue, c.queue);
      assert.ok(row!.exact, `stored ${row!.head}, not ${json.slice(0, 100)}`);
      storedJobs.push({ id: written.jobIds[0]!, what: c.what, path, json });
      return;
    }
    if ("written" in outcome) {
      await undo(outcome.written);
      assert.fail(`stored as ${JSON.stringify(outcome.written)}; expected a refusal`);
    }
    const { error } = outcome;
    if (expected instanceof RegExp) {
      assert.ok(error instanceof CliRefused, `expected exit 2, got ${String(error)}`);
      assert.match(error.stderr, /^pgq: [^\n]+\n$/, "one line on stderr, no stack trace");
      assert.match(error.stderr, expected);
      assert.equal(error.stdout, "");
    } else if (kind(path) === "library") {
      assert.ok(error instanceof ValidationError && error.code === expected, `expected ValidationError ${expected}, got ${String(error)}`);
    } else {
      assert.equal((error as { code?: string }).code, expected, `expected SQLSTATE ${expected}, got ${String(error)}`);
    }
    assert.deepEqual(await footprint(), before, "nothing written");
  });
}

for (const c of cases) {
  describe(c.what, () => {
    for (const path of Object.keys(paths) as Path[]) if (kind(path) !== "cli") check(c, path);
    // Starting node is most of a CLI run: the three go at once, all refusing or all storing.
    describe("pgq enqueue", { concurrency: true }, () => {
      for (const path of Object.keys(paths) as Path[]) if (kind(path) === "cli") check(c, path);
    });
  });
}

test("pgq work runs every stored job to completion; its handler gets the payload as stored", async () => {
  assert.ok(storedJobs.length > 50, `only ${storedJobs.length} jobs stored`);
  const queues = [...new Set((await db`select distinct queue from pgq.jobs`).map((r) => r.queue as string))];
  // The neighbours enqueueMany wrote run too; every job in the database is one of the matrix's.
  const all = await db`select id, payload::text as payload from pgq.jobs`;
  const worker = pgqWork(queues, { handler: "test/fixtures/echo-handler.mjs", concurrency: 4, databaseUrl: url });
  await waitFor(async () => (await db`select count(*)::int as n from received`)[0]!.n === all.length, {
    timeoutMs: 90_000,
    what: `${all.length} jobs to run`,
  });
  const r = await worker.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await footprint(), { jobs: 0, dead: 0, schedules: 0 }, "every job completed, none died or is stuck");
  const received = new Map((await db`select job_id, payload_json from received`).map((r) => [r.job_id as string, r.payload_json as string]));
  for (const job of all) {
    assert.equal(received.get(job.id), JSON.stringify(JSON.parse(job.payload)), `job ${job.id}`);
  }
  // What pgq promises about integers beyond 2^53: jsonb keeps the SQL function's exactly, and
  // a handler reads them as JavaScript numbers, rounded.
  const big = storedJobs.filter((j) => j.what === "an integer beyond 2^53" && j.path.startsWith("SQL"));
  assert.equal(big.length, 2);
  for (const j of big) assert.equal(received.get(j.id), '{"n":9007199254740992}');
});

test("a BigInt in a payload is refused with what to do", async () => {
  await assert.rejects(q.enqueue("hostile", { n: 2n ** 64n }), {
    code: "INVALID_PAYLOAD",
    message: "the payload contains the BigInt 18446744073709551616n, which JSON cannot represent: send it as a string",
  });
});
