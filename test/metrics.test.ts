// Prometheus metrics scraped from a real `pgq work --metrics-port` process, moving with real jobs.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { connect } from "../src/index.js";
import { tables } from "../src/db/tables.js";
import { readQueueGauges } from "../src/telemetry/queue-gauges.js";
import { collect, startCli } from "./helpers/cli.js";
import { freshDatabase } from "./helpers/db.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const { url } = await freshDatabase();
const db = postgres(url, { max: 2, onnotice: () => {} });
const q = await connect({ databaseUrl: url });
await db`create table cli_marks (job_id bigint, queue text, attempt int)`;
test.after(async () => {
  await q.close();
  await db.end();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  return text.split("\n").filter((line) => line && !line.startsWith("#")).map((line) => {
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    return { name: match[1]!, labels, value: Number(match[3]) };
  });
}

/** The one sample of `name` whose labels include `labels`; undefined if there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `one ${name} ${JSON.stringify(labels)}, not ${found.length}`);
  return found[0]?.value;
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parse(await response.text());
}

test("pgq work --metrics-port serves counters, histograms and gauges that move with real jobs", async () => {
  const m = { queue: "m", mode: "lease" };
  await q.enqueueMany("m", [{ mark: true }, { mark: true }, { mark: true }]);
  await q.enqueue("m", { fail: "boom" }, { maxAttempts: 1 });
  await q.enqueue("m", { later: true }, { delayMs: 3_600_000 });

  const worker = pgqWork("m", { handler: "test/fixtures/cli-handler.mjs", mode: "lease", concurrency: 3, metricsPort: 0, databaseUrl: url });
  let stderr = "";
  worker.child.stderr!.on("data", (d: string) => (stderr += d));
  const metricsUrl = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(stderr)?.[1], { what: "the metrics URL in the log" });
  await waitFor(async () => (await db`select from cli_marks`).length === 3 && (await db`select from pgq.dead_jobs`).length === 1, {
    what: "the jobs to run",
  });
  const first = await waitFor(async () => {
    const samples = await scrape(metricsUrl);
    return value(samples, "pgq_jobs_completed_total", m) === 3 && value(samples, "pgq_jobs_dead_total", m) === 1 ? samples : undefined;
  }, { what: "the counters to count the jobs" });
  assert.equal(value(first, "pgq_jobs_started_total", m), 4);
  assert.equal(value(first, "pgq_jobs_failed_total", m), 0, "no attempt was retried yet");
  assert.equal(value(first, "pgq_job_duration_seconds_count", { ...m, outcome: "completed" }), 3);
  assert.equal(value(first, "pgq_job_duration_seconds_count", { ...m, outcome: "dead" }), 1);
  assert.equal(value(first, "pgq_job_wait_seconds_count", m), 4);
  assert.ok(value(first, "pgq_claims_total", { mode: "lease" })! >= 1);
  assert.equal(value(first, "pgq_claim_errors_total", { mode: "lease" }), 0);
  assert.equal(value(first, "pgq_database_outages_total"), 0);
  assert.equal(value(first, "pgq_worker_slots", { mode: "lease" }), 3);
  assert.equal(value(first, "pgq_worker_slots_busy", { mode: "lease" }), 0);
  assert.equal(value(first, "pgq_listener_connected"), 1);
  // From inspect's counts, in the same process.
  assert.equal(value(first, "pgq_jobs", { queue: "m", state: "dead" }), 1);
  assert.equal(value(first, "pgq_jobs", { queue: "m", state: "scheduled" }), 1);
  assert.equal(value(first, "pgq_jobs", { queue: "m", state: "ready" }), 0);
  assert.equal(value(first, "pgq_oldest_ready_job_age_seconds", { queue: "m" }), 0);
  for (const name of ["pgq_jobs_cancelled_total", "pgq_jobs_expired_total"]) {
    assert.ok((await (await fetch(metricsUrl)).text()).includes(`# TYPE ${name} counter`), `${name} is defined`);
  }

  // A retried attempt, then two more completions: the counters move on.
  await q.enqueue("m", { fail: "once" }, { maxAttempts: 2, backoff: { baseMs: 0 } });
  await q.enqueueMany("m", [{ mark: true }, { mark: true }]);
  const second = await waitFor(async () => {
    const samples = await scrape(metricsUrl);
    return value(samples, "pgq_jobs_completed_total", m) === 5 && value(samples, "pgq_jobs_dead_total", m) === 2 ? samples : undefined;
  }, { what: "the counters to count the new jobs" });
  assert.equal(value(second, "pgq_jobs_failed_total", m), 1);
  assert.equal(value(second, "pgq_jobs_started_total", m), 8);
  assert.equal(value(second, "pgq_job_duration_seconds_count", { ...m, outcome: "retrying" }), 1);
  for (const s of second) assert.ok(!("id" in s.labels) && !("job" in s.labels), "no job ids as labels");

  const r = await worker.stop();
  assert.equal(r.code, 0, r.stderr);
});

test("the queue gauges are the bounded counts of inspect, and an app can mount the handler", async () => {
  const { metricsHandler, metricsRegistry } = await import("../src/index.js");
  await q.enqueueMany("gauged", [1, 2], { runAt: new Date(Date.now() - 60_000) });
  // The reading `pgq work` took above is shared, and young enough to be served as it is.
  await db`update pgq.queue_gauges set taken_at = now() - interval '1 minute'`;
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => void metricsHandler(req, res)).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  try {
    const { port } = server.address() as { port: number };
    const samples = await scrape(`http://127.0.0.1:${port}/`);
    assert.equal(value(samples, "pgq_jobs", { queue: "gauged", state: "ready" }), 2);
    assert.ok(value(samples, "pgq_oldest_ready_job_age_seconds", { queue: "gauged" })! >= 59);
    assert.equal(typeof metricsRegistry.getSingleMetric("pgq_jobs_completed_total"), "object");
  } finally {
    server.close();
  }
});

test("one process at a time counts the queue gauges; the others read its reading", async (t) => {
  await q.enqueueMany("shared", [1, 2, 3]);
  const pools = Array.from({ length: 4 }, () => postgres(url, { max: 2, onnotice: () => {} }));
  t.after(() => Promise.all(pools.map((p) => p.end())));
  const read = () => Promise.all(pools.map((p) => readQueueGauges(p, tables(p, "pgq"))));
  const ready = (r: Awaited<ReturnType<typeof readQueueGauges>>) => r?.queues.find((g) => g.queue === "shared")?.ready;

  await db`update pgq.queue_gauges set taken_at = now() - interval '1 minute'`;
  const stale = await read();
  // ageMs 0: this call counted. The others found the lock taken (and kept the stale reading) or
  // took it after the counter committed, and then found its reading fresh.
  assert.equal(stale.filter((r) => r?.ageMs === 0).length, 1, "exactly one counted");
  const [row] = await db<{ queues: { queue: string; ready: number }[] }[]>`select queues from pgq.queue_gauges`;
  assert.equal(row!.queues.find((g) => g.queue === "shared")?.ready, 3);
  const fresh = await read();
  assert.ok(fresh.every((r) => r !== undefined && r.ageMs > 0 && ready(r) === 3), "a fresh reading is read, not counted again");

  // A reading being refreshed elsewhere (the lock held) is served as it is, without waiting.
  await db`update pgq.queue_gauges set taken_at = now() - interval '1 minute'`;
  await q.enqueue("shared", 4);
  const held = await db.reserve();
  try {
    await held`begin`;
    await held`select pg_advisory_xact_lock(hashtext('pgq queue gauges'), hashtext('pgq'))`;
    const meanwhile = await read();
    assert.ok(meanwhile.every((r) => r !== undefined && r.ageMs >= 60_000 && ready(r) === 3));
    await held`commit`;
  } finally {
    held.release();
  }
  assert.equal(ready((await read()).find((r) => r?.ageMs === 0)), 4, "counted again once the lock is free");
});

test("pgq dashboard serves /metrics behind the dashboard's credentials", async () => {
  const token = "0123456789abcdef0123";
  const child = startCli(["dashboard", "--port", "0", "--token", token], { databaseUrl: url });
  try {
    let stdout = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d));
    const base = await waitFor(() => /(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout)?.[1], { what: "the dashboard's URL" });
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const samples = parse(await response.text());
    assert.equal(typeof value(samples, "pgq_jobs", { queue: "gauged", state: "ready" }), "number");
  } finally {
    child.kill("SIGTERM");
    await collect(child);
  }
});
