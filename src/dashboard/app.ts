// The dashboard's routes. Every read goes through the Queue's own methods or the admin modules
// the CLI uses (src/admin/), so the dashboard owns no SQL; every action is a POST that passes
// the checks in security.ts, and none exists in read-only mode.
import type { IncomingMessage, ServerResponse } from "node:http";
import { getRequestListener } from "@hono/node-server";
import { Hono, type Context } from "hono";
import { csrf } from "hono/csrf";
import type { Queue } from "../client.js";
import { readHealth } from "../admin/health.js";
import { findJob, LISTED_STATES, listJobs, type ListedState } from "../admin/jobs.js";
import { PgqError, ValidationError } from "../errors.js";
import { metricsText } from "../telemetry/metrics.js";
import { STYLESHEET, SCRIPT } from "./assets.js";
import { authenticate, CsrfTokens, sameHost, type DashboardAuth } from "./security.js";
import { ThroughputChart } from "./throughput.js";
import * as views from "./views.js";

export interface DashboardOptions {
  /** The path the dashboard is mounted under, e.g. "/admin/pgq"; default "" (the root). */
  prefix?: string;
  /** Show everything, change nothing: no action is drawn, and every POST is refused. */
  readOnly?: boolean;
  /** Required to serve anywhere but loopback (the CLI enforces it). */
  auth?: DashboardAuth;
}

export interface Dashboard {
  /** A fetch-API handler: Hono, Bun, Deno, or anything that speaks Request and Response. */
  fetch(request: Request): Promise<Response>;
  /**
   * A Node handler for node:http, Express (app.use(prefix, d.node), before any body parser) or
   * Fastify (reply.hijack(), then d.node(request.raw, reply.raw)).
   */
  node(req: IncomingMessage, res: ServerResponse): void;
}

const BULK_SCOPES = new Set(["all"]);
/**
 * Exact counts up to this, estimates above: the overview refreshes every two seconds in every
 * open tab, and inspect's default (10,000) walks ten times as many index entries per state.
 */
const EXACT_UP_TO = 1000;
/** Overview requests this close together share one read. */
const OVERVIEW_SHARED_MS = 1000;

export function dashboard(q: Queue, options: DashboardOptions = {}): Dashboard {
  const prefix = (options.prefix ?? "").replace(/\/+$/, "");
  if (prefix !== "" && !/^\/[^?#]*$/.test(prefix)) throw new ValidationError("INVALID_OPTION", 'prefix is a path such as "/admin/pgq"');
  const readOnly = options.readOnly ?? false;
  const tokens = new CsrfTokens();
  const throughput = new ThroughputChart(q.sql, q.schema);
  const cookiePath = prefix || "/";
  const app = new Hono({ strict: false }).basePath(prefix || "/");

  app.use("*", async (c, next) => {
    c.header("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("Cache-Control", "no-store");
    const refused = authenticate(c, options.auth, cookiePath);
    if (refused) return refused;
    await next();
  });
  app.use("*", csrf({ origin: sameHost }));
  app.post("*", async (c, next) => {
    if (readOnly) return c.text("pgq dashboard is read-only\n", 403);
    const form = await c.req.parseBody({ all: true });
    if (!tokens.verify(c, form._csrf)) return c.text("pgq dashboard: this form is stale or came from elsewhere: reload the page and try again\n", 403);
    await next();
    overviewData.drop();
  });

  const view = (c: Context): views.View => ({ base: prefix, readOnly, csrf: tokens.tokenFor(c, cookiePath) });
  const page = (c: Context, title: string, current: string, body: views.Html, status: 200 | 400 | 404 = 200) =>
    c.html(views.layout(view(c), title, current, body, { flash: c.req.query("done"), error: c.req.query("error") }), status);
  const back = (c: Context, path: string, done: string) => c.redirect(`${prefix}${path}${path.includes("?") ? "&" : "?"}${new URLSearchParams({ done })}`, 303);

  app.get("/assets/dashboard.css", (c) => c.body(STYLESHEET, 200, { "Content-Type": "text/css; charset=utf-8" }));
  app.get("/assets/dashboard.js", (c) => c.body(SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8" }));
  // Prometheus's scrape, behind the same credentials as the pages (Authorization: Bearer or Basic).
  app.get("/metrics", async (c) => {
    const { status, contentType, body } = await metricsText();
    return c.body(body, status, { "Content-Type": contentType });
  });

  // The overview's data, shared by the requests that come within a second of each other (every
  // open tab polls it every two seconds) and dropped by any action, so that its page shows it.
  // inspect() skips its own count of finished jobs: the chart reads them, minute by minute, at
  // the same time, for the queues the last read listed (and afterwards for any new one).
  let charted: string[] = [];
  const overviewData = sharedFor(OVERVIEW_SHARED_MS, async (): Promise<views.OverviewData> => {
    const [inspection, settings, health, workers, chart] = await Promise.all([
      q.inspect({ exactUpTo: EXACT_UP_TO, finished: false }), q.queues(), readHealth(q.sql, q.schema), q.workers(), throughput.read(charted)]);
    const listed = new Set(inspection.queues.map((s) => s.queue));
    const extraQueues = settings.filter((s) => !listed.has(s.queue)).map((s) => ({ queue: s.queue, paused: s.paused }));
    charted = [...listed, ...extraQueues.map((e) => e.queue)];
    const unread = charted.filter((queue) => !chart.has(queue));
    if (unread.length > 0) for (const [queue, points] of await throughput.read(unread)) chart.set(queue, points);
    throughput.retain(charted);
    return { inspection, health, workers, extraQueues, throughput: chart };
  });
  app.get("/", async (c) => page(c, "Overview", "", views.overview(view(c), views.overviewFragment(view(c), await overviewData()))));
  app.get("/fragments/overview", async (c) => c.html(views.overviewFragment(view(c), await overviewData())));

  app.get("/jobs", async (c) => {
    const query = jobsQuery(c);
    if (typeof query === "string") return page(c, "Jobs", "/jobs", views.notFound(query), 400);
    const cursor = c.req.query("cursor") || undefined;
    // "All matching" is a whole queue's live jobs (q.cancelQueue()), or the dead jobs of a queue or of all.
    const filteredBeyondQueue = query.id !== undefined || query.payload !== undefined;
    const [jobs, bulkCount] = await Promise.all([
      listJobs(q.sql, q.schema, { ...query, cursor }),
      readOnly || filteredBeyondQueue ? undefined
        : query.state === "dead" ? countJobs(q, query.queue, ["dead"])
        : query.state === undefined && query.queue !== undefined ? countJobs(q, query.queue, LIVE) : undefined,
    ]);
    return page(c, "Jobs", "/jobs", views.jobsPage(view(c), query, jobs, bulkCount));
  });
  app.get("/jobs/:id{[1-9][0-9]{0,18}}", async (c) => {
    const job = await findJob(q.sql, q.schema, c.req.param("id"));
    if (!job) return page(c, "Job", "/jobs", views.notFound(`Job ${c.req.param("id")} is nowhere: it never existed, or it finished longer ago than its queue keeps history.`), 404);
    return page(c, `Job ${job.id}`, "/jobs", views.jobPage(view(c), job));
  });
  app.get("/workers", async (c) => page(c, "Workers", "/workers", views.workersPage(view(c), views.workersFragment(view(c), await q.workers()))));
  app.get("/fragments/workers", async (c) => c.html(views.workersFragment(view(c), await q.workers())));
  app.get("/schedules", async (c) => page(c, "Schedules", "/schedules", views.schedulesPage(view(c), await q.schedules())));
  app.get("/topics", async (c) => page(c, "Topics", "/topics", views.topicsPage(await q.subscriptions())));
  app.get("/enqueue", (c) => (readOnly ? c.text("pgq dashboard is read-only\n", 403) : page(c, "Enqueue", "/enqueue", views.enqueuePage(view(c)))));

  app.post("/queues/pause", async (c) => {
    const queue = await field(c, "queue");
    await q.pause(queue);
    return back(c, "/", `Paused ${queue}: workers take no more of its jobs.`);
  });
  app.post("/queues/resume", async (c) => {
    const queue = await field(c, "queue");
    await q.resume(queue);
    return back(c, "/", `Resumed ${queue}.`);
  });

  // Retry and delete act on dead jobs: the ones ticked, or every one matching the filter. Unless
  // the form says it was confirmed, the answer is a page asking, with the number it would touch.
  for (const [verb, label] of [["retry", "Retry"], ["delete", "Delete"]] as const) {
    app.post(`/jobs/${verb}`, async (c) => {
      const form = await c.req.parseBody({ all: true });
      const ids = [form.ids ?? []].flat().map(String);
      const queue = typeof form.queue === "string" && form.queue !== "" ? form.queue : undefined;
      const all = typeof form.scope === "string" && BULK_SCOPES.has(form.scope);
      if (ids.length === 0 && !all) return back(c, "/jobs?state=dead", "Nothing selected.");
      const filter = all ? { ...(queue === undefined ? {} : { queue }) } : { ids };
      if (form.confirmed !== "1") {
        const count = all ? await countJobs(q, queue, ["dead"]) : { n: ids.length, estimated: false };
        const fields: Record<string, string | string[]> = all ? { scope: "all", ...(queue === undefined ? {} : { queue }) } : { ids };
        const what = `${count.estimated ? "about " : ""}${count.n.toLocaleString("en")} dead job${count.n === 1 ? "" : "s"}${queue === undefined ? "" : ` in ${queue}`}`;
        return page(c, "Confirm", "/jobs", views.confirmPage(view(c), `/jobs/${verb}`, fields, `${label} ${what}?${verb === "delete" ? " This cannot be undone." : ""}`, "/jobs?state=dead"));
      }
      if (verb === "retry") {
        const moved = await q.deadJobs.retry(filter);
        return back(c, ids.length === 1 ? `/jobs/${ids[0]}` : "/jobs?state=dead", `Retried ${moved.length} job${moved.length === 1 ? "" : "s"}.`);
      }
      const deleted = await q.deadJobs.purge(all && queue === undefined ? { all: true } : filter);
      return back(c, "/jobs?state=dead", `Deleted ${deleted} dead job${deleted === 1 ? "" : "s"}.`);
    });
  }
  app.post("/jobs/:id{[1-9][0-9]{0,18}}/cancel", async (c) => {
    const id = c.req.param("id");
    const cancelled = await q.cancel(id);
    return back(c, `/jobs/${id}`, cancelled ? `Cancelled job ${id}.` : `Job ${id} was no longer waiting or running: nothing to cancel.`);
  });
  // Cancel acts on live jobs: the ones ticked, or every one of a queue (q.cancelQueue()), after
  // a page asking, with the number it would touch.
  app.post("/jobs/cancel", async (c) => {
    const form = await c.req.parseBody({ all: true });
    const ids = [form.ids ?? []].flat().map(String);
    const queue = typeof form.queue === "string" && form.queue !== "" ? form.queue : undefined;
    const all = form.scope === "all" && queue !== undefined;
    if (ids.length === 0 && !all) return back(c, "/jobs", "Nothing selected.");
    if (form.confirmed !== "1") {
      const count = all ? await countJobs(q, queue, LIVE) : { n: ids.length, estimated: false };
      const what = `${count.estimated ? "about " : ""}${count.n.toLocaleString("en")} job${count.n === 1 ? "" : "s"}${all ? ` in ${queue}, waiting or running` : ""}`;
      return page(c, "Confirm", "/jobs", views.confirmPage(view(c), "/jobs/cancel", all ? { scope: "all", queue } : { ids },
        `Cancel ${what}? Waiting jobs never run; running ones are aborted.`, all ? `/jobs?${new URLSearchParams({ queue })}` : "/jobs"));
    }
    const n = all ? await q.cancelQueue(queue) : (await Promise.all(ids.map((id) => q.cancel(id)))).filter(Boolean).length;
    return back(c, all ? `/jobs?${new URLSearchParams({ queue })}` : "/jobs", `Cancelled ${n} job${n === 1 ? "" : "s"}.`);
  });

  app.post("/enqueue", async (c) => {
    const form = await c.req.parseBody();
    const values = Object.fromEntries(Object.entries(form).filter((e): e is [string, string] => typeof e[1] === "string"));
    try {
      const payload: unknown = JSON.parse(values.payload || "null");
      const { id } = await q.enqueue(values.queue ?? "", payload, {
        ...(values.priority ? { priority: Number(values.priority) } : {}),
        ...(values.delayMs ? { delayMs: Number(values.delayMs) } : {}),
      });
      return back(c, `/jobs/${id}`, `Enqueued job ${id} in ${values.queue}.`);
    } catch (error) {
      if (!(error instanceof SyntaxError || error instanceof PgqError)) throw error;
      return c.html(views.layout(view(c), "Enqueue", "/enqueue", views.enqueuePage(view(c), values), { error: error.message }), 400);
    }
  });
  app.post("/schedules", async (c) => {
    const form = await c.req.parseBody();
    const text = (k: string) => (typeof form[k] === "string" ? form[k] : "");
    try {
      const payload: unknown = JSON.parse(text("payload") || "null");
      await q.schedule(text("name"), text("cron"), text("queue"), payload, { timezone: text("timezone") || "UTC" });
      return back(c, "/schedules", `Saved schedule ${text("name")}.`);
    } catch (error) {
      if (!(error instanceof SyntaxError || error instanceof PgqError)) throw error;
      return c.redirect(`${prefix}/schedules?${new URLSearchParams({ error: error.message })}`, 303);
    }
  });
  app.post("/schedules/delete", async (c) => {
    const name = await field(c, "name");
    const removed = await q.unschedule(name);
    return back(c, "/schedules", removed ? `Removed schedule ${name}.` : `There was no schedule ${name}.`);
  });

  app.onError((error, c) => {
    if (error instanceof ValidationError) {
      return c.text(`pgq dashboard: ${error.message}\n`, 400);
    }
    if ("getResponse" in error && typeof error.getResponse === "function") return error.getResponse() as Response;
    console.error(error);
    return c.text("pgq dashboard: internal error (see the server's log)\n", 500);
  });

  const fetch = async (request: Request) => app.fetch(request);
  const listener = getRequestListener(fetch);
  return {
    fetch,
    node(req, res) {
      // Express strips its mount path from req.url; the routes are written with the prefix.
      const original = (req as IncomingMessage & { originalUrl?: string }).originalUrl;
      if (original !== undefined) req.url = original;
      void listener(req, res);
    },
  };
}

function jobsQuery(c: Context): views.JobsQuery | string {
  const get = (k: string) => c.req.query(k)?.trim() || undefined;
  const state = get("state");
  if (state !== undefined && !LISTED_STATES.includes(state as ListedState)) return `state must be one of ${LISTED_STATES.join(", ")}`;
  const id = get("id");
  if (id !== undefined && !/^[1-9][0-9]{0,18}$/.test(id)) return "a job id is a positive integer";
  return { queue: get("queue"), state: state as ListedState | undefined, id, payload: get("payload") };
}

async function field(c: Context, name: string): Promise<string> {
  const value = (await c.req.parseBody())[name];
  if (typeof value !== "string" || value === "") throw new ValidationError("INVALID_OPTION", `the form has no ${name}`);
  return value;
}

const LIVE = ["ready", "scheduled", "running", "retrying"] as const;

/** How many jobs of these states a bulk action over the queue (or every queue) touches, from inspect's bounded counts. */
async function countJobs(q: Queue, queue: string | undefined, states: readonly ("ready" | "scheduled" | "running" | "retrying" | "dead")[]): Promise<views.Count> {
  const inspection = await q.inspect({ exactUpTo: EXACT_UP_TO, finished: false, ...(queue === undefined ? {} : { queue }) });
  return {
    n: inspection.queues.reduce((n, s) => n + states.reduce((m, state) => m + s[state], 0), 0),
    estimated: inspection.queues.some((s) => states.some((state) => s.estimated.includes(state))),
  };
}

/** fn's answer, shared by every call within `ms` of the call that asked for it; drop() forgets it. */
function sharedFor<T>(ms: number, fn: () => Promise<T>): (() => Promise<T>) & { drop(): void } {
  let last: { at: number; value: Promise<T> } | undefined;
  const get = () => {
    if (!last || performance.now() - last.at > ms) {
      const value = fn();
      const entry = { at: performance.now(), value };
      last = entry;
      // A failure is not shared beyond the calls already waiting for it.
      value.catch(() => {
        if (last === entry) last = undefined;
      });
    }
    return last.value;
  };
  return Object.assign(get, { drop: () => { last = undefined; } });
}
