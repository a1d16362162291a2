// The dashboard over HTTP, without a browser: what each page answers, what each action refuses
// (stale or cross-site forms, read-only mode, missing credentials), escaping of user data,
// mounting under a prefix with both handler kinds, and the bounded job list underneath.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { Hono } from "hono";
import { dashboard } from "../src/index.js";
import { readHealth } from "../src/admin/health.js";
import { listJobs, WALK_LIMIT } from "../src/admin/jobs.js";
import { runCli } from "./helpers/cli.js";
import { Browser, bury } from "./helpers/dashboard.js";
import { testQueue } from "./helpers/queue.js";

const { q, db } = await testQueue();
const app = dashboard(q);
const browser = () => new Browser(app.fetch);

test("every page answers, and unknown jobs and bad filters are told apart", async () => {
  await q.enqueue("pages", { n: 1 });
  const [deadId] = await bury(q, db, "pages", [{ dead: true }]);
  await q.schedule("nightly", "0 3 * * *", "pages", { report: true });
  await q.subscribe("pages", "orders.*");
  const b = browser();
  for (const path of ["/", "/fragments/overview", "/jobs", "/jobs?state=dead", "/jobs?queue=pages&state=ready", `/jobs/${deadId}`,
    "/workers", "/fragments/workers", "/schedules", "/topics", "/enqueue", "/assets/dashboard.css", "/assets/dashboard.js"]) {
    const res = await b.get(path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  }
  assert.match(await (await b.get("/topics")).text(), /orders\.\*/);
  assert.match(await (await b.get("/schedules")).text(), /nightly/);
  assert.equal((await b.get("/jobs/999999999")).status, 404);
  assert.equal((await b.get("/jobs?state=finished")).status, 400);
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

test("enqueue, schedules, and the seam for cancel", async () => {
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
  const id = (await db`select id::text from pgq.jobs where queue = 'forms'`)[0]!.id as string;
  assert.match(await (await b.get(`/jobs/${id}`)).text(), /<button disabled[^>]*>Cancel<\/button>/);
  assert.equal((await b.post(`/jobs/${id}/cancel`, {})).status, 501);
});

test("read-only mode draws no action and refuses every POST", async () => {
  const [id] = await bury(q, db, "readonly", [{}]);
  const ro = new Browser(dashboard(q, { readOnly: true }).fetch);
  for (const path of ["/", `/jobs/${id}`, "/jobs?state=dead", "/schedules"]) {
    const page = await (await ro.get(path)).text();
    assert.ok(!page.includes('method="post"'), path);
  }
  assert.equal((await ro.get("/enqueue")).status, 403);
  // Even with a session and a token minted by a writable dashboard's page.
  const res = await ro.request("POST", "/jobs/retry", { body: { ids: id!, confirmed: "1", _csrf: "x" }, headers: { origin: ro.origin, "sec-fetch-site": "same-origin" } });
  assert.equal(res.status, 403);
  assert.equal((await q.deadJobs.list({ queue: "readonly" })).length, 1);
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
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listJobs(q.sql, q.schema, { queue: "walk", state: "ready", limit: 500, ...(cursor ? { cursor } : {}) });
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.next ?? undefined;
  } while (cursor);
  assert.equal(new Set(seen).size, WALK_LIMIT + 101);
  assert.equal(seen[0], needle, "the oldest ready job is claimed first");
  assert.deepEqual((await listJobs(q.sql, q.schema, { payload: '"i": 4999}' })).jobs.length, 1);
  assert.deepEqual((await listJobs(q.sql, q.schema, { id: needle! })).jobs.map((j) => j.state), ["ready"]);
  await assert.rejects(listJobs(q.sql, q.schema, { state: "dead", cursor: first.next! }), /cursor/);
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
