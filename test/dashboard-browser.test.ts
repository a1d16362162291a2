// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a real
// PostgreSQL and a real `pgq work` process: every page loads, a dead job retried from its page
// runs and completes (its result and the overview's chart show it), a queue paused from the
// overview stops feeding the worker, a running job cancelled from its page stops, a payload
// holding <script> stays text, a completed job is in the finished list with its result on its
// page, and the read-only and authenticated modes refuse actions.
// Screenshots of the main pages go to test-output/dashboard/ (git-ignored).
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { serveDashboard } from "../src/cli/dashboard.js";
import { bury } from "./helpers/dashboard.js";
import { testQueue } from "./helpers/queue.js";
import { CHROMIUM, chromium, needs } from "./helpers/tools.js";
import { waitFor } from "./helpers/wait.js";
import { pgqWork } from "./helpers/workers.js";

const SCREENSHOTS = join(process.cwd(), "test-output", "dashboard");
const ctx = await testQueue();
// One real worker process for the file, serving the queues the tests watch.
if (chromium.installed()) {
  pgqWork(["browser", "other"], { handler: "test/fixtures/dashboard-handler.mjs", databaseUrl: ctx.url, concurrency: 2, pollIntervalMs: 200 });
}

describe("the dashboard in a browser", needs(chromium), () => {
  let browser: Browser;
  const servers: Server[] = [];
  const serve = async (options: Parameters<typeof serveDashboard>[1] = { port: 0, host: "127.0.0.1" }) => {
    const { server } = await serveDashboard(ctx.q, options);
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  before(async () => {
    const { chromium: launcher } = await import("playwright-core");
    browser = await launcher.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    await mkdir(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    for (const server of servers) server.closeAllConnections(), server.close();
    await browser?.close();
  });

  /** A page in a fresh context (its own cookies, as a new user's browser has). */
  async function open(base: string, path: string, options: { httpCredentials?: { username: string; password: string } } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
    const page = await context.newPage();
    const res = await page.goto(`${base}${path}`);
    assert.equal(res?.status(), 200, path);
    return page;
  }

  test("every page loads; a dead job retried from its page runs and completes", async (t) => {
    const base = await serve();
    const { q, db } = ctx;
    await waitFor(async () => (await q.workers()).some((w) => w.alive), { what: "the worker to register" });
    const [deadId] = await bury(q, db, "browser", [{ to: "ada@example.com", template: "welcome" }]);
    await bury(q, db, "reports", [{ month: "2024-05" }, { month: "2024-06" }]);
    await q.enqueueMany("reports", [{ month: "2024-07" }, { month: "2024-08" }], { delayMs: 3_600_000 });
    await q.schedule("nightly-report", "0 3 * * *", "reports", { month: "last" });
    await q.subscribe("browser", "user.*.signed-up");

    const page = await open(base, "/");
    for (const [path, heading, shot] of [["/", "Overview", "overview"], ["/jobs", "Jobs", "jobs"], ["/jobs?state=dead", "Jobs", "dead-jobs"], [`/jobs/${deadId}`, `Job ${deadId}`, "job"],
      ["/workers", "Workers", "workers"], ["/schedules", "Schedules", "schedules"], ["/topics", "Topic subscriptions", "topics"], ["/enqueue", "Enqueue a job", ""]] as const) {
      const started = performance.now();
      await page.goto(`${base}${path}`);
      assert.match((await page.locator("h1").textContent()) ?? "", new RegExp(`^${heading}`), path);
      t.diagnostic(`${path}: loaded in ${(performance.now() - started).toFixed(0)} ms`);
      if (shot) await page.screenshot({ path: join(SCREENSHOTS, `${shot}.png`), fullPage: true });
    }
    await page.goto(`${base}/jobs/${deadId}`);
    assert.match(await page.locator("text=ada@example.com").first().textContent() ?? "", /ada@example\.com/);
    assert.ok(await page.locator("details >> text=out of toner").count(), "the error's cause is shown");

    await page.getByRole("button", { name: "Retry" }).click();
    await page.waitForURL(new RegExp(`/jobs/${deadId}\\?done=`));
    assert.match(await page.getByRole("status").textContent() ?? "", /Retried 1 job/);
    await waitFor(async () => {
      await page.reload();
      return (await page.locator("h1 .badge").textContent()) === "completed";
    }, { what: "the retried job to complete" });
    assert.deepEqual(JSON.parse(await page.locator("pre.result").textContent() ?? ""), { sent: true });
    assert.equal(await page.getByRole("button", { name: "Retry" }).count(), 0);
    assert.equal((await q.deadJobs.list({ queue: "browser" })).length, 0);
    // The overview's chart counts it, without a reload.
    await page.goto(`${base}/`);
    await waitFor(async () => /[1-9][0-9]* done/.test(await page.locator('tr[data-queue="browser"] .throughput').textContent() ?? ""), {
      what: "the chart to count the completed job",
    });
    await page.screenshot({ path: join(SCREENSHOTS, "overview-chart.png"), fullPage: true });
  });

  test("a completed job shows in the finished list, and its page has its result", async () => {
    const base = await serve();
    const { q } = ctx;
    const { id } = await q.enqueue("browser", { to: "grace@example.com", note: "<b>not bold</b>" });
    await waitFor(async () => (await q.getJob(id))?.state === "completed", { what: "the job to complete" });
    const page = await open(base, "/jobs");
    await page.locator("select[name=state]").selectOption("completed");
    await page.locator("input[name=queue]").fill("browser");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/state=completed/);
    const row = page.locator("tbody tr", { has: page.getByRole("link", { name: id, exact: true }) });
    assert.equal(await row.locator(".badge").textContent(), "completed");
    assert.match(await row.textContent() ?? "", /<b>not bold<\/b>/, "the payload is shown as text");
    assert.equal(await page.locator("main b").count(), 0);
    assert.equal(await page.locator("input[type=checkbox]").count(), 0, "nothing to tick: finished jobs have no actions");
    await page.screenshot({ path: join(SCREENSHOTS, "finished-jobs.png"), fullPage: true });
    await row.getByRole("link", { name: id, exact: true }).click();
    await page.waitForURL(new RegExp(`/jobs/${id}$`));
    assert.equal(await page.locator("h1 .badge").textContent(), "completed");
    assert.deepEqual(JSON.parse(await page.locator("pre.result").textContent() ?? ""), { sent: true });
  });

  test("a running job shows its progress, and Cancel on its page stops it", async () => {
    const base = await serve();
    const { q } = ctx;
    const { id } = await q.enqueue("browser", { hang: true });
    await waitFor(async () => (await q.getJob(id))?.progress !== null, { what: "the job to start and report progress" });
    const page = await open(base, `/jobs/${id}`);
    assert.equal(await page.locator("h1 .badge").textContent(), "running");
    assert.deepEqual(JSON.parse(await page.locator("code.progress").textContent() ?? ""), { step: 1, of: 3 });
    await page.screenshot({ path: join(SCREENSHOTS, "running-job.png"), fullPage: true });
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.waitForURL(new RegExp(`/jobs/${id}\\?done=`));
    assert.match(await page.getByRole("status").textContent() ?? "", new RegExp(`Cancelled job ${id}`));
    assert.equal(await page.locator("h1 .badge").textContent(), "cancelled");
    assert.equal(await page.getByRole("button", { name: "Cancel" }).count(), 0);
    // The worker heard it: its slot is free again, and the job never completes.
    await waitFor(async () => (await q.workers()).every((w) => !w.runningJobs.includes(id)), { what: "the worker to let the job go" });
    assert.equal((await q.getJob(id))?.state, "cancelled");
  });

  test("pausing a queue from the overview stops the worker taking its jobs; resuming lets it drain", async () => {
    const base = await serve();
    const { q, db } = ctx;
    // A job due in an hour keeps the queue on the overview while it has nothing ready.
    await q.enqueue("browser", { later: true }, { delayMs: 3_600_000 });
    const page = await open(base, "/");
    await page.locator('tr[data-queue="browser"]').getByRole("button", { name: "Pause" }).click();
    await page.waitForURL(/done=Paused/);
    await page.locator('tr[data-queue="browser"] .badge.paused').waitFor();

    await q.enqueueMany("browser", [{ n: 1 }, { n: 2 }, { n: 3 }]);
    // The same worker still takes the other queue's jobs: it is running, and passing over "browser".
    const { id: other } = await q.enqueue("other", { n: 4 });
    await waitFor(async () => (await db`select from pgq.jobs where id = ${other}`).length === 0, { what: "the other queue's job" });
    const ready = page.locator('tr[data-queue="browser"] td.n').first();
    await waitFor(async () => (await ready.textContent())?.trim() === "3", { what: "the live overview to show 3 ready" });
    assert.equal((await db`select from pgq.jobs where queue = 'browser' and locked_until is null and run_at <= now()`).length, 3);

    await page.locator('tr[data-queue="browser"]').getByRole("button", { name: "Resume" }).click();
    await page.waitForURL(/done=Resumed/);
    // No reload: the overview's live figures follow the queue draining.
    await waitFor(async () => (await page.locator('tr[data-queue="browser"] td.n').first().textContent())?.trim() === "0", {
      what: "the overview to show the queue drained", timeoutMs: 20_000,
    });
  });

  test("a payload holding <script> stays text", async () => {
    const base = await serve();
    const { q, db } = ctx;
    const evil = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">";
    const [id] = await bury(q, db, "hostile", [{ note: evil }]);
    for (const path of [`/jobs/${id}`, "/jobs?state=dead&queue=hostile"]) {
      const page = await open(base, path);
      assert.notEqual(await page.title(), "pwned");
      assert.equal(await page.locator("main script, main img").count(), 0);
      assert.match(await page.locator("main").textContent() ?? "", /<script>document\.title/);
    }
  });

  test("read-only and authenticated dashboards refuse actions", async () => {
    const { q, db } = ctx;
    const [id] = await bury(q, db, "guarded", [{}]);
    const ro = await serve({ port: 0, host: "127.0.0.1", readOnly: true });
    const page = await open(ro, `/jobs/${id}`);
    assert.equal(await page.locator("form[method=post]").count(), 0);
    assert.equal(await page.locator("text=read-only").count(), 1);
    // A form posted anyway, from the page itself: refused.
    const status = await page.evaluate(async (jobId) => (await fetch("/jobs/retry", {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `ids=${jobId}&confirmed=1`,
    })).status, id);
    assert.equal(status, 403);
    assert.equal((await q.deadJobs.list({ queue: "guarded" })).length, 1);

    const withAuth = await serve({ port: 0, host: "127.0.0.1", auth: { basic: { user: "ops", password: "hunter22" } } });
    const anonymous = await browser.newContext();
    assert.equal((await anonymous.request.get(`${withAuth}/`)).status(), 401);
    const signedIn = await open(withAuth, `/jobs/${id}`, { httpCredentials: { username: "ops", password: "hunter22" } });
    assert.equal(await signedIn.getByRole("button", { name: "Retry" }).count(), 1);
    // Another site's page submitting a form to the dashboard, in the signed-in browser, is refused.
    const evil = createServer((_req, res) => {
      res.setHeader("content-type", "text/html");
      res.end(`<form method="post" action="${withAuth}/queues/pause"><input name="queue" value="guarded"></form><script>document.forms[0].submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    servers.push(evil);
    const refused = signedIn.waitForResponse((r) => r.url().endsWith("/queues/pause"));
    await signedIn.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    assert.equal((await refused).status(), 403);
    assert.equal((await q.queues()).some((s) => s.queue === "guarded" && s.paused), false);
  });
});
