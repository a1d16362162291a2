// `pgq work`'s logs: a readable line per record for a person (the default on a terminal, or
// --log-format pretty), pino's JSON lines for machines; stacks only at --log-level debug.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readableLine } from "../src/cli/log-lines.js";
import { connect } from "../src/index.js";
import { collect, startCli } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";
import { waitFor } from "./helpers/wait.js";

const failure = {
  level: 40, time: Date.UTC(2026, 10, 29, 12, 0, 1), msg: "job failed; it will be retried", worker: "h:1:abc",
  queue: "emails", jobId: "1042", attempt: 2, maxAttempts: 25, retryInMs: 2100,
  err: { type: "Error", message: "boom\nsecond line", code: "E_X", stack: "Error: boom\n    at handler (h.mjs:1:1)" },
};

test("a failed attempt is one line: queue, job, attempt n/m, what happens next, the error", () => {
  const line = readableLine(failure, false);
  assert.match(line, /^\d\d:\d\d:\d\d WARN  emails #1042 attempt 2\/25: job failed; it will be retried in 2\.1 s: Error \[E_X\]: boom$/);
});

test("stacks follow, indented, only when asked for", () => {
  const [, ...stack] = readableLine(failure, true).split("\n");
  assert.deepEqual(stack, ["    Error: boom", "        at handler (h.mjs:1:1)"]);
});

test("other fields follow in parentheses; bound ones (worker, pid) are left out", () => {
  const line = readableLine({ level: 30, time: 0, msg: "worker started", worker: "w", pid: 1, concurrency: 4, queues: ["a", "b"] }, false);
  assert.match(line, / INFO  worker started \(concurrency=4, queues=\["a","b"\]\)$/);
});

test("pgq work --log-format pretty prints each failure as one line; json stays JSON", async () => {
  const { url } = await freshDatabase();
  const q = await connect({ databaseUrl: url });
  test.after(() => q.close());
  for (const format of ["pretty", "json"]) {
    const queue = `logs-${format}`;
    await q.enqueueMany(queue, [{ fail: "bad input" }, { fail: "bad input" }], { maxAttempts: 1 });
    const child = startCli(["work", queue, "--handler", "test/fixtures/cli-handler.mjs", "--log-format", format], { databaseUrl: url });
    const done = collect(child, performance.now(), 20_000);
    await waitFor(async () => (await q.stats()).queues.find((s) => s.queue === queue)?.dead === 2, { what: "both jobs to die" });
    child.kill("SIGTERM");
    const { code, stderr } = await done;
    assert.equal(code, 0, stderr);
    const lines = stderr.trim().split("\n");
    if (format === "json") {
      assert.ok(lines.every((l) => JSON.parse(l)));
      continue;
    }
    const failures = lines.filter((l) => l.includes("moved to dead_jobs"));
    assert.equal(failures.length, 2, stderr);
    for (const l of failures) assert.match(l, new RegExp(`ERROR ${queue} #\\d+ attempt 1/1: job failed on its last attempt and moved to dead_jobs: Error: bad input$`));
    assert.ok(!stderr.includes("    at "), "no stack below warn level");
  }
});
