// The dashboard over HTTP, without a browser: what each page answers, what each action refuses
// (stale or cross-site forms, read-only mode, missing credentials), escaping of user data,
// mounting under a prefix with both handler kinds, and the bounded job list underneath.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { Hono } from "hono";
import { dashboard, type JobInfo } from "../src/index.js";
import { readHealth } from "../src/admin/health.js";
import { listJobs, type JobListFilter } from "../src/admin/jobs.js";
import { WALK_LIMIT } from "../src/admin/walk.js";
import { readThroughput } from "../src/admin/throughput.js";
import { ThroughputChart } from "../src/dashboard/throughput.js";
import * as views from "../src/dashboard/views.js";
import { runCli } from "./helpers/cli.js";
import { Browser, bury } from "./helpers/dashboard.js";
import { drained, testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db } = await testQueue();

/** The ids of every page of the dashboard's job list, following its cursor to the end. */
async function everyPage(filter: Omit<JobListFilter, "cursor">): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listJobs(q.sql, q.schema, { ...filter, ...(cursor ? { cursor } : {}) });
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.next ?? undefined;
  } while (cursor);
  return seen;
}
// A dashboard of its own per browser: the overview's data is shared for a second within one.
const browser = () => new Browser(dashboard(q).fetch);

test("every page answers, and unknown jobs and bad filters are told apart", async () => {
  await q.enqueue("pages", { n: 1 });
  const [deadId] = await bury(q, db, "pages", [{ dead: true }]);
  await q.schedule("nightly", "0 3 * * *", "pages", { report: true });
  await q.subscribe("pages", "orders.*");
  const b = browser();
  for (const path of ["/", "/fragments/overview", "/jobs", "/jobs?state=dead", "/jobs?queue=pages&state=ready", "/jobs?state=finished", `/jobs/${deadId}`,
    "/workers", "/fragments/workers", "/schedules", "/topics", "/enqueue", "/assets/dashboard.css", "/assets/dashboard.js"]) {
    const res = await b.get(path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  }
  assert.match(await (await b.get("/topics")).text(), /orders\.\*/);
  assert.match(await (await b.get("/schedules")).text(), /nightly/);
  assert.equal((await b.get("/jobs/999999999")).status, 404);
  assert.equal((await b.get("/jobs?state=asleep")).status, 400);
  assert.equal((await b.get("/nowhere")).status, 404);
});

test("payloads, errors and queue names are escaped wherever they are shown", async () => {
  const evil = "<script>alert(1)</script>";
  const [id] = await bury(q, db, `q${evil}`.slice(0, 40), [{ html: evil }]);
  const b = browser();
  for (const path of [`/jobs/${id}`, "/jobs?state=dead", "/"]) {
    const page = await (await b.get(path)).text();
    assert.ok(!page.includes("<script>alert"), path);
    assert.ok(page.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), path);
  }
  const page = await (await b.get(`/jobs/${id}`)).text();
  assert.match(page, /the printer is on fire &lt;b&gt;/);
  assert.match(page, /at print \(printer\.js:1:1\)/);
  assert.match(page, /out of toner/);
});

test("actions need this session's token and a same-origin form", async () => {
  const b = browser();
  const token = await b.token();
  // No token, a token from another session, a cross-site form: all refused, nothing changes.
  assert.equal((await b.post("/queues/pause", { queue: "csrf" }, "")).status, 403);
  assert.equal((await b.post("/queues/pause", { queue: "csrf" }, await browser().token())).status, 403);
  assert.equal((await b.post("/queues/pause", { queue: "csrf" }, token, { "sec-fetch-site": "cross-site", origin: "https://evil.example" })).status, 403);
  assert.equal((await b.post("/queues/pause", { queue: "csrf" }, token, { origin: "https://evil.example" })).status, 403);
  assert.deepEqual((await q.queues()).filter((s) => s.queue === "csrf"), []);
  const ok = await b.post("/queues/pause", { queue: "csrf" }, token);
  assert.equal(ok.status, 303);
  assert.equal((await q.queues()).find((s) => s.queue === "csrf")?.paused, true);
  assert.equal((await b.post("/queues/resume", { queue: "csrf" }, token)).status, 303);
  assert.equal((await q.queues()).find((s) => s.queue === "csrf")?.paused, false);
});

test("bulk retry and delete ask first, saying how many, then act", async () => {
  const ids = await bury(q, db, "bulk", [{ a: 1 }, { a: 2 }, { a: 3 }]);
  const b = browser();
  const ask = await b.post("/jobs/retry", { scope: "all", queue: "bulk" });
  assert.equal(ask.status, 200);
  assert.match(await ask.text(), /Retry 3 dead jobs in bulk\?/);
  assert.equal((await q.deadJobs.list({ queue: "bulk" })).length, 3, "asking changes nothing");
  const selected = await b.post("/jobs/delete", { ids: [ids[0]!, ids[1]!] });
  assert.match(await selected.text(), /Delete 2 dead jobs\? This cannot be undone/);
  assert.equal((await b.post("/jobs/delete", { ids: [ids[0]!, ids[1]!], confirmed: "1" })).status, 303);
  assert.deepEqual((await q.deadJobs.list({ queue: "bulk" })).map((j) => j.id), [ids[2]]);
  const done = await b.post("/jobs/retry", { scope: "all", queue: "bulk", confirmed: "1" });
  assert.equal(new URL(done.headers.get("location") ?? "", "http://x").searchParams.get("done"), "Retried 1 job.");
  assert.equal((await db`select count(*)::int as n from pgq.jobs where queue = 'bulk'`)[0]!.n, 1);
});

test("enqueue and schedules", async () => {
  const b = browser();
  const res = await b.post("/enqueue", { queue: "forms", payload: '{"hello":"world"}', priority: "-1", delayMs: "" });
  assert.equal(res.status, 303);
  const [job] = await db`select payload, priority from pgq.jobs where queue = 'forms'`;
  assert.deepEqual(job, { payload: { hello: "world" }, priority: -1 });
  const bad = await b.post("/enqueue", { queue: "forms", payload: "{not json" });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /JSON/);
  assert.equal((await b.post("/schedules", { name: "hourly", cron: "0 * * * *", queue: "forms", timezone: "UTC", payload: "null" })).status, 303);
  assert.deepEqual((await q.schedules()).map((s) => s.name).filter((n) => n === "hourly"), ["hourly"]);
  assert.equal((await b.post("/schedules/delete", { name: "hourly" })).status, 303);
  assert.ok(!(await q.schedules()).some((s) => s.name === "hourly"));
});

test("cancel: one job from its page, the ticked ones, or a whole queue after saying how many", async () => {
  const b = browser();
  const { id } = await q.enqueue("cancel", { n: 1 });
  const page = await (await b.get(`/jobs/${id}`)).text();
  assert.match(page, new RegExp(`action="/jobs/${id}/cancel"[^]*?<button[^>]*>Cancel</button>`));
  const done = await b.post(`/jobs/${id}/cancel`, {});
  assert.equal(done.status, 303);
  assert.equal(new URL(done.headers.get("location")!, "http://x").searchParams.get("done"), `Cancelled job ${id}.`);
  assert.equal((await q.getJob(id))?.state, "cancelled");
  const after = await (await b.get(`/jobs/${id}`)).text();
  assert.match(after, /badge cancelled/);
  assert.ok(!after.includes(`/jobs/${id}/cancel`), "a finished job has no Cancel button");
  const again = await b.post(`/jobs/${id}/cancel`, {});
  assert.match(new URL(again.headers.get("location")!, "http://x").searchParams.get("done")!, /no longer waiting or running/);

  const ids = await q.enqueueMany("cancel", [{ n: 2 }, { n: 3 }, { n: 4 }]);
  const list = await (await b.get("/jobs?queue=cancel")).text();
  assert.match(list, /Cancel all 3 in cancel/);
  assert.match(list, /<button>Cancel selected<\/button>/);
  const ask = await b.post("/jobs/cancel", { ids: [ids[0]!] });
  assert.match(await ask.text(), /Cancel 1 job\? Waiting jobs never run/);
  assert.equal((await q.getJob(ids[0]!))?.state, "ready", "asking changes nothing");
  assert.equal((await b.post("/jobs/cancel", { ids: [ids[0]!], confirmed: "1" })).status, 303);
  assert.equal((await q.getJob(ids[0]!))?.state, "cancelled");
  assert.match(await (await b.post("/jobs/cancel", { scope: "all", queue: "cancel" })).text(), /Cancel 2 jobs in cancel, waiting or running\?/);
  const all = await b.post("/jobs/cancel", { scope: "all", queue: "cancel", confirmed: "1" });
  assert.equal(new URL(all.headers.get("location")!, "http://x").searchParams.get("done"), "Cancelled 2 jobs.");
  assert.equal((await db`select id from pgq.jobs where queue = 'cancel'`).length, 0);
});

test("a job's page: progress while it runs; result, worker and timeline once it finished", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const worker = q.work("job-page", async (job, ctx) => {
    if ((job.payload as { fail?: boolean }).fail) throw new Error("no <luck>");
    await ctx.progress({ percent: 40 });
    await released;
    return { invoice: "<INV-7>" };
  }, { mode: "lease", pollIntervalMs: 50 });
  try {
    const { id } = await q.enqueue("job-page", { order: 7 });
    const b = browser();
    await waitFor(async () => (await q.getJob(id))?.progress !== null, { what: "the job's progress" });
    const running = await (await b.get(`/jobs/${id}`)).text();
    assert.match(running, /badge running/);
    assert.match(running, /<code class="progress">\{&quot;percent&quot;:40\}<\/code>/);
    assert.match(running, /Not yet: it is running\./);
    assert.match(running, /First attempt started/);
    assert.match(running, /its lease lapses unless renewed/);
    release();
    await waitFor(async () => (await q.getJob(id))?.state === "completed", { what: "the job to complete" });
    const finished = await (await b.get(`/jobs/${id}`)).text();
    const job = (await q.getJob(id))!;
    assert.match(finished, /badge completed/);
    assert.match(finished, /<pre class="result">\{\n  &quot;invoice&quot;: &quot;&lt;INV-7&gt;&quot;\n\}<\/pre>/);
    assert.ok(job.worker && finished.includes(`on ${job.worker}`), "the timeline names the worker");
    assert.ok(finished.includes(`<time datetime="${job.finishedAt!.toISOString()}">`));
    const order = ["Created", "First attempt started", "badge completed"].map((s) => finished.indexOf(s, finished.indexOf("<ol class=\"timeline\">")));
    assert.deepEqual([...order].sort((x, y) => x - y), order, "oldest first");

    const { id: failing } = await q.enqueue("job-page", { fail: true }, { maxAttempts: 1 });
    await waitFor(async () => (await q.getJob(failing))?.state === "dead", { what: "the failing job to die" });
    const dead = await (await b.get(`/jobs/${failing}`)).text();
    assert.match(dead, /Attempt 1 failed/);
    assert.match(dead, /no &lt;luck&gt;/);
    assert.match(dead, /None: it ended dead\./);
    assert.match(dead, /action="\/jobs\/retry"/, "it is in dead_jobs: it can be retried");
  } finally {
    release();
    await worker.stop();
  }
});

test("the overview charts the last hour from pgq.history, a bar a minute, extrapolating busy minutes", async () => {
  // A database of its own: the chart's queue is the overview's only one, so its first load reads the whole hour.
  const { q, db } = await testQueue();
  // 100 completed jobs spread evenly over a minute ten minutes ago, and 3 completed and 1 dead two minutes ago.
  await db`
    insert into pgq.history (id, queue, state, payload, priority, attempts, max_attempts, errors, created_at, finished_at, worker, purge_at)
    select -i, 'chart', 'completed', '{}'::jsonb, 0, 1, 1, '[]'::jsonb, now(),
           date_trunc('minute', now()) - interval '10 minutes' + i * interval '600 milliseconds', 'w', now() + interval '1 day'
    from generate_series(0, 99) i
    union all
    select -1000 - i, 'chart', case when i = 0 then 'dead' else 'completed' end, '{}', 0, 1, 1, '[]', now(),
           date_trunc('minute', now()) - interval '2 minutes' + i * interval '1 second', 'w', now() + interval '1 day'
    from generate_series(0, 3) i`;
  const { queues } = await readThroughput(q.sql, q.schema, [{ queue: "chart", minutes: 60 }]);
  const points = queues.get("chart")!;
  assert.equal(points.length, 60);
  const busy = points.at(-11)!;
  assert.deepEqual([busy.completed, busy.failed, busy.estimated], [100, 0, true], "25 rows read cover the last quarter of the minute");
  assert.deepEqual(points.at(-3), { minute: points.at(-3)!.minute, completed: 3, failed: 1, estimated: false });
  assert.equal(points.filter((p) => p.completed + p.failed > 0).length, 2);
  const row = /<tr data-queue="chart">[^]*?<\/tr>/.exec(await (await new Browser(dashboard(q).fetch).get("/")).text())?.[0] ?? "";
  assert.match(row, /~103 done · 1\.0% failed<\/span>/);
  assert.match(row, /aria-label="~103 completed, ~1 failed in the last hour"/);

  // With four queues, a read fills in at most 60 queue-minutes before the last ones: each queue's
  // hour is whole after four reads, newest minutes first, with neither gaps nor repeats.
  const chart = new ThroughputChart(q.sql, q.schema);
  const charted = ["chart", "quiet-1", "quiet-2", "quiet-3"];
  const lengths: number[] = [];
  let read = await chart.read(charted);
  for (;;) {
    const shown = read.get("chart")!;
    lengths.push(shown.length);
    const minutes = shown.map((p) => p.minute.getTime());
    assert.deepEqual(minutes, minutes.map((_, i) => minutes[0]! + i * 60_000), "one point a minute, oldest first");
    assert.ok(charted.every((queue) => read.get(queue)!.length === shown.length));
    if (shown.length === 60) break;
    read = await chart.read(charted);
  }
  assert.ok(lengths[0]! >= 15 && lengths[0]! <= 17, `the first read shows the last quarter hour (${lengths.join(", ")})`);
  assert.ok(lengths.length >= 4 && lengths.length <= 5, `whole after four reads or so (${lengths.join(", ")})`);
  const whole = read.get("chart")!;
  assert.deepEqual(whole.filter((p) => p.completed + p.failed > 0).map((p) => [p.completed, p.failed]), [[100, 0], [3, 1]]);
  const partial = /<tr data-queue="chart">[^]*?<\/tr>/.exec(String(await views.overviewFragment({ base: "", readOnly: true, csrf: "" }, {
    inspection: await q.inspect(), health: await readHealth(q.sql, q.schema), workers: [], extraQueues: [],
    throughput: new Map([["chart", whole.slice(-15)]]),
  })))?.[0] ?? "";
  assert.match(partial, /· last 15 min so far<\/span>/, "a chart still filling in says how much it shows");
  assert.match(partial, /in the last 15 minutes"/);
});

test("read-only mode draws no action and refuses every POST", async () => {
  const [id] = await bury(q, db, "readonly", [{}]);
  const { id: live } = await q.enqueue("readonly", {});
  const ro = new Browser(dashboard(q, { readOnly: true }).fetch);
  for (const path of ["/", `/jobs/${id}`, `/jobs/${live}`, "/jobs?state=dead", "/jobs?queue=readonly", "/schedules"]) {
    const page = await (await ro.get(path)).text();
    assert.ok(!page.includes('method="post"'), path);
  }
  assert.equal((await ro.get("/enqueue")).status, 403);
  // Even with a session and a token minted by a writable dashboard's page.
  const res = await ro.request("POST", "/jobs/retry", { body: { ids: id!, confirmed: "1", _csrf: "x" }, headers: { origin: ro.origin, "sec-fetch-site": "same-origin" } });
  assert.equal(res.status, 403);
  assert.equal((await q.deadJobs.list({ queue: "readonly" })).length, 1);
  const cancel = await ro.request("POST", `/jobs/${live}/cancel`, { body: { _csrf: "x" }, headers: { origin: ro.origin, "sec-fetch-site": "same-origin" } });
  assert.equal(cancel.status, 403);
  assert.equal((await q.getJob(live))?.state, "ready");
});

test("a token or basic-auth credentials are required when configured", async () => {
  const token = "0123456789abcdef0123";
  const tokenApp = dashboard(q, { auth: { token } });
  assert.equal((await new Browser(tokenApp.fetch).get("/")).status, 401);
  assert.equal((await new Browser(tokenApp.fetch, undefined, { authorization: `Bearer ${token}` }).get("/")).status, 200);
  assert.equal((await new Browser(tokenApp.fetch, undefined, { authorization: "Bearer wrong" }).get("/")).status, 401);
  const b = new Browser(tokenApp.fetch);
  const login = await b.get(`/workers?token=${token}`);
  assert.equal(login.status, 303);
  assert.equal(login.headers.get("location"), "/workers");
  assert.equal((await b.get("/workers")).status, 200, "the cookie carries the token afterwards");
  assert.equal((await new Browser(tokenApp.fetch).post("/queues/pause", { queue: "auth" }, "x")).status, 401);

  const basicApp = dashboard(q, { auth: { basic: { user: "ops", password: "s3cret" } } });
  const none = await new Browser(basicApp.fetch).get("/");
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /^Basic/);
  const wrong = new Browser(basicApp.fetch, undefined, { authorization: `Basic ${Buffer.from("ops:nope").toString("base64")}` });
  assert.equal((await wrong.get("/")).status, 401);
  const right = new Browser(basicApp.fetch, undefined, { authorization: `Basic ${Buffer.from("ops:s3cret").toString("base64")}` });
  assert.equal((await right.get("/")).status, 200);
  assert.equal((await right.post("/queues/pause", { queue: "auth" })).status, 303);
});

test("mounted under a prefix: the fetch handler in Hono, the Node handler in node:http", async () => {
  const mounted = dashboard(q, { prefix: "/ops/pgq" });
  const outer = new Hono();
  outer.get("/", (c) => c.text("the app's own page"));
  outer.all("/ops/pgq/*", (c) => mounted.fetch(c.req.raw));
  const viaHono = new Browser((r) => Promise.resolve(outer.fetch(r)));
  const page = await (await viaHono.get("/ops/pgq/")).text();
  assert.match(page, /href="\/ops\/pgq\/jobs"/);
  assert.match(page, /action="\/ops\/pgq\/queues\/pause"|No queues yet|action="\/ops\/pgq\/queues\/resume"/);
  assert.equal((await viaHono.get("/ops/pgq/jobs?state=dead")).status, 200);
  assert.equal((await viaHono.post("/ops/pgq/queues/pause", { queue: "mounted" }, await viaHono.token("/ops/pgq/enqueue"))).status, 303);
  assert.equal((await q.queues()).find((s) => s.queue === "mounted")?.paused, true);

  const server = createServer((req, res) => {
    if (req.url?.startsWith("/ops/pgq/")) return mounted.node(req, res);
    res.end("the app's own page");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const viaNode = new Browser((r) => fetch(r), origin);
    assert.equal((await viaNode.get("/ops/pgq/workers")).status, 200);
    assert.equal((await viaNode.post("/ops/pgq/queues/resume", { queue: "mounted" }, await viaNode.token("/ops/pgq/enqueue"))).status, 303);
    assert.equal((await q.queues()).find((s) => s.queue === "mounted")?.paused, false);
    // Express hands the handler req.url without its mount path, and the full one in originalUrl.
    const res = await new Promise<number>((resolve) => {
      const express = createServer((req, res) => {
        (req as typeof req & { originalUrl?: string }).originalUrl = req.url;
        req.url = req.url!.slice("/ops/pgq".length);
        mounted.node(req, res);
      });
      express.listen(0, "127.0.0.1", async () => {
        const r = await fetch(`http://127.0.0.1:${(express.address() as AddressInfo).port}/ops/pgq/topics`);
        express.close();
        resolve(r.status);
      });
    });
    assert.equal(res, 200);
  } finally {
    server.close();
  }
});

test("the job list walks a bounded stretch per page, and its cursor carries on", async () => {
  const [needle] = await q.enqueueMany("walk", [{ needle: true }]);
  await q.enqueueMany("walk", Array.from({ length: WALK_LIMIT + 100 }, (_, i) => ({ i })));
  const first = await listJobs(q.sql, q.schema, { queue: "walk", payload: '{"needle":true}' });
  assert.deepEqual(first.jobs, []);
  assert.equal(first.walkStopped, true);
  assert.equal(first.walked, WALK_LIMIT);
  const second = await listJobs(q.sql, q.schema, { queue: "walk", payload: '{"needle":true}', cursor: first.next! });
  assert.deepEqual(second.jobs.map((j) => j.id), [needle]);

  // Plain paging along the claim order, by text in the payload, and by id.
  const seen = await everyPage({ queue: "walk", state: "ready", limit: 500 });
  assert.equal(new Set(seen).size, WALK_LIMIT + 101);
  assert.equal(seen[0], needle, "the oldest ready job is claimed first");
  assert.deepEqual((await listJobs(q.sql, q.schema, { payload: '"i": 4999}' })).jobs.length, 1);
  assert.deepEqual((await listJobs(q.sql, q.schema, { id: needle! })).jobs.map((j) => j.state), ["ready"]);
  await assert.rejects(listJobs(q.sql, q.schema, { state: "dead", cursor: first.next! }), /cursor/);
});

test("finished jobs are listed newest first, by state, queue, id and payload, each linking to its page", async () => {
  const evil = "<script>alert(2)</script>";
  const worker = q.work("finished", async (job) => ({ echo: job.payload }), { mode: "lease", pollIntervalMs: 50 });
  let done: string[];
  try {
    done = await q.enqueueMany("finished", [{ n: 1 }, { n: 2, html: evil }]);
    await drained(db, "finished");
  } finally {
    await worker.stop();
  }
  const { id: cancelled } = await q.enqueue("finished", { n: 3 }, { delayMs: 3_600_000 });
  assert.equal(await q.cancel(cancelled), true);
  const newestFirst = (await db`select id::text from pgq.history where queue = 'finished' order by finished_at desc, id desc`).map((r) => r.id as string);
  assert.equal(newestFirst[0], cancelled);
  const listed = (page: string) => [...page.matchAll(/<td><a href="\/jobs\/(\d+)">/g)].map((m) => m[1]);

  const b = browser();
  const all = await (await b.get("/jobs?state=finished&queue=finished")).text();
  assert.deepEqual(listed(all), newestFirst);
  assert.match(all, /<th>Finished<\/th>/);
  assert.match(all, /<option value="finished" selected>any finished<\/option>/);
  for (const state of ["completed", "cancelled", "expired"]) assert.match(all, new RegExp(`<option value="${state}" >${state}</option>`));
  assert.ok(!all.includes('name="ids"'), "finished jobs have no actions to tick them for");
  assert.ok(!all.includes("<script>alert"), "payloads stay text");
  assert.match(all, /&lt;script&gt;alert\(2\)&lt;\/script&gt;/);

  assert.deepEqual(listed(await (await b.get("/jobs?state=completed&queue=finished")).text()), newestFirst.filter((id) => id !== cancelled));
  assert.deepEqual(listed(await (await b.get("/jobs?state=cancelled")).text()).filter((id) => newestFirst.includes(id!)), [cancelled]);
  assert.deepEqual(listed(await (await b.get(`/jobs?state=finished&queue=finished&payload=${encodeURIComponent('{"n":2}')}`)).text()), [done[1]]);
  assert.deepEqual(listed(await (await b.get(`/jobs?state=finished&payload=alert(2)`)).text()), [done[1]]);
  assert.deepEqual(listed(await (await b.get(`/jobs?state=finished&id=${done[0]}`)).text()), [done[0]]);
  assert.deepEqual(listed(await (await b.get(`/jobs?state=expired&queue=finished`)).text()), []);

  const page = await (await b.get(`/jobs/${done[1]}`)).text();
  assert.match(page, /badge completed/);
  assert.match(page, /<pre class="result">\{\n  &quot;echo&quot;: \{\n    &quot;n&quot;: 2,\n    &quot;html&quot;: &quot;&lt;script&gt;/);
});

test("q.history() and the finished list page with a cursor: newest first, no overlap nor gap, across partitions and equal times", async () => {
  // 300 jobs of three queues, finished four at a time (a batch shares its statement's time), kept
  // for 7 or 8 days: two partitions (q.migrate() makes them), their rows interleaved in time.
  await q.migrate();
  await db`
    insert into pgq.history (id, queue, state, payload, priority, attempts, max_attempts, errors, created_at, finished_at, worker, purge_at)
    select 100000 + i, 'paged-' || i % 3, case when i % 10 = 0 then 'cancelled' else 'completed' end, jsonb_build_object('i', i), 0, 1, 1,
           '[]', now(), now() - (i / 4) * interval '1 second', 'w', now() + interval '7 days' + (i % 2) * interval '1 day'
    from generate_series(1, 300) i`;
  assert.equal((await db`select count(distinct tableoid)::int as n from pgq.history where queue like 'paged-%'`)[0]!.n, 2);
  const expected = async (where: string) =>
    (await db.unsafe(`select id::text from pgq.history where finished_at > now() - interval '1 hour' ${where} order by finished_at desc, id desc`)).map((r) => r.id as string);
  const pages = async (options: { queue?: string; state?: "cancelled" }, limit: number) => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await q.history({ ...options, limit, ...(cursor ? { cursor } : {}) });
      assert.ok(page.length <= limit);
      assert.ok(page.length === limit || page.next === null, "a short page is the last");
      seen.push(...page.map((j) => j.id));
      cursor = page.next ?? undefined;
    } while (cursor);
    return seen;
  };
  assert.deepEqual(await pages({}, 7), await expected(""), "across queues");
  assert.deepEqual(await pages({ queue: "paged-1" }, 7), await expected("and queue = 'paged-1'"));
  assert.deepEqual(await pages({ state: "cancelled" }, 4), await expected("and state = 'cancelled'"));
  const [job] = await q.history({ queue: "paged-2", limit: 1 });
  assert.deepEqual(job?.payload, { i: 2 });
  const old: JobInfo[] = await q.history({ queue: "paged-0" });
  assert.equal(old.length, 100);

  // The dashboard's list walks the same way.
  const seen = await everyPage({ state: "finished", queue: "paged-2", limit: 9 });
  assert.deepEqual(seen, await expected("and queue = 'paged-2'"));
  await assert.rejects(q.history({ cursor: (await q.history({ queue: "paged-1", limit: 1 })).next! }), /cursor/);
});

test("the finished list walks a bounded stretch per page; q.history() walks on until its page fills", async () => {
  await db`
    insert into pgq.history (id, queue, state, payload, priority, attempts, max_attempts, errors, created_at, finished_at, worker, purge_at)
    select 200000 + i, 'long-history', case when i = ${WALK_LIMIT + 50} then 'expired' else 'completed' end,
           jsonb_build_object('needle', i = ${WALK_LIMIT + 50}), 0, 1, 1, '[]', now(), now() - i * interval '1 millisecond', 'w',
           now() + interval '7 days'
    from generate_series(1, ${WALK_LIMIT + 100}) i`;
  const first = await listJobs(q.sql, q.schema, { state: "finished", queue: "long-history", payload: '{"needle":true}' });
  assert.deepEqual([first.jobs, first.walked, first.walkStopped], [[], WALK_LIMIT, true]);
  const second = await listJobs(q.sql, q.schema, { state: "finished", queue: "long-history", payload: '{"needle":true}', cursor: first.next! });
  assert.deepEqual(second.jobs.map((j) => [j.id, j.state]), [[String(200000 + WALK_LIMIT + 50), "expired"]]);
  const page = await (await browser().get(`/jobs?state=expired&queue=long-history`)).text();
  assert.match(page, /Searched 5,000 jobs without filling the page/);
  assert.match(page, /Keep searching →/);
  const expired = await q.history({ queue: "long-history", state: "expired" });
  assert.deepEqual([expired.map((j) => j.id), expired.next], [[String(200000 + WALK_LIMIT + 50)], null]);
});

test("health: a transaction holding the xmin horizon is named, with how long", async () => {
  const held = await db.reserve();
  try {
    await held`begin isolation level repeatable read`;
    await held`select count(*) from pgq.jobs`;
    const pid = (await held`select pg_backend_pid() as pid`)[0]!.pid as number;
    const health = await readHealth(q.sql, q.schema, { xminHeldWarnMs: 0 });
    const holder = health.xminHolders.find((h) => h.who === `pid ${pid}`);
    assert.ok(holder, JSON.stringify(health));
    assert.equal(holder.kind, "transaction");
    assert.ok(holder.heldForMs !== null && holder.heldForMs >= 0);
    assert.ok(health.jobsTable);
  } finally {
    await held`rollback`;
    held.release();
  }
});

test("pgq dashboard will not listen beyond loopback without credentials", async () => {
  const res = await runCli(["dashboard", "--host", "0.0.0.0", "--port", "0"], { databaseUrl: "postgres://nobody@127.0.0.1:1/none" });
  assert.equal(res.code, 2);
  assert.match(res.stderr, /^pgq: refusing to serve the dashboard on 0\.0\.0\.0 without credentials: add --token [0-9a-f]{32} or --basic-auth user:password\n$/);
  const short = await runCli(["dashboard", "--token", "short"], { databaseUrl: "postgres://nobody@127.0.0.1:1/none" });
  assert.equal(short.code, 2);
});
