// The dashboard's pages as hono's html`` templates: every interpolated value is escaped, and only
// markup built by another html`` is inserted as is. Payloads, error messages and queue names are
// user data and go through here like any string.
import { html } from "hono/html";
import type { Inspection, QueueInspection } from "../admin/inspect.js";
import type { Health } from "../admin/health.js";
import type { JobDetail, JobPage, JobErrorEntry, ListedState } from "../admin/jobs.js";
import type { ThroughputPoint } from "../admin/throughput.js";
import { FINISHED_LISTINGS } from "../admin/jobs.js";
import { HOUR_MINUTES } from "./throughput.js";
import type { WorkerInfo } from "../admin/workers.js";
import type { ErrorDetails } from "../error-record.js";
import type { Schedule, Subscription } from "../types.js";

export type Html = ReturnType<typeof html>;

/** What every page needs to draw its links and forms. */
export interface View {
  /** The path prefix the dashboard is mounted under ("" at the root). */
  base: string;
  readOnly: boolean;
  csrf: string;
}

const NAV = [["", "Overview"], ["/jobs", "Jobs"], ["/workers", "Workers"], ["/schedules", "Schedules"], ["/topics", "Topics"], ["/enqueue", "Enqueue"]] as const;

export function layout(v: View, title: string, current: string, body: Html, message?: { flash?: string; error?: string }): Html {
  const nav = NAV.filter(([path]) => !(v.readOnly && path === "/enqueue"));
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · pgq</title><link rel="stylesheet" href="${v.base}/assets/dashboard.css"></head>
<body><header><strong>pgq</strong><nav>${nav.map(([path, label]) =>
    html`<a href="${v.base}${path || "/"}" class="${path === current ? "on" : ""}">${label}</a>`)}</nav>
${v.readOnly ? html`<span class="badge">read-only</span>` : ""}</header>
<main>${message?.flash ? html`<div class="flash" role="status">${message.flash}</div>` : ""}${message?.error ? html`<div class="error" role="alert">${message.error}</div>` : ""}
${body}</main><script src="${v.base}/assets/dashboard.js"></script></body></html>`;
}

/** A POST form with this session's CSRF token; nothing at all in read-only mode. */
export function action(v: View, path: string, fields: Record<string, string | string[]>, label: string, attrs: { disabled?: boolean; title?: string } = {}): Html {
  if (v.readOnly) return html``;
  return html`<form class="inline" method="post" action="${v.base}${path}"><input type="hidden" name="_csrf" value="${v.csrf}">${
    Object.entries(fields).flatMap(([k, values]) => [values].flat().map((value) => html`<input type="hidden" name="${k}" value="${value}">`))
  }<button ${attrs.disabled ? html`disabled` : ""} title="${attrs.title ?? ""}">${label}</button></form>`;
}

export function overview(v: View, live: Html): Html {
  return html`<h1>Overview</h1><div data-live="${v.base}/fragments/overview">${live}</div>`;
}

export interface OverviewData {
  inspection: Inspection;
  /** Queues with no jobs but settings of their own (paused, say) are listed too. */
  extraQueues: { queue: string; paused: boolean }[];
  health: Health;
  workers: WorkerInfo[];
  /** Per queue, the last hour's completed and failed jobs, a point a minute. */
  throughput: Map<string, ThroughputPoint[]>;
}

/** A count from inspect's bounded counting: an estimate past its bound. */
export interface Count {
  n: number;
  estimated: boolean;
}

export function overviewFragment(v: View, d: OverviewData): Html {
  const warnings = overviewWarnings(d);
  const empty: QueueInspection = {
    queue: "", ready: 0, scheduled: 0, running: 0, retrying: 0, dead: 0, oldestReadyAgeMs: null, diedLastMinute: 0,
    paused: false, completedLastMinute: 0, failedLastMinute: 0, completedLastHour: 0, failedLastHour: 0, estimated: [],
    limits: { concurrency: null, keyConcurrency: null, rateLimit: null, keyRateLimit: null },
  };
  const rows = [...d.inspection.queues, ...d.extraQueues.map((e) => ({ ...empty, ...e }))].sort((a, b) => (a.queue < b.queue ? -1 : 1));
  const n = (q: QueueInspection, k: "ready" | "scheduled" | "running" | "retrying" | "dead") =>
    html`<td class="n"><a href="${v.base}/jobs?${new URLSearchParams({ queue: q.queue, state: k })}">${q.estimated.includes(k) ? "~" : ""}${q[k].toLocaleString("en")}</a></td>`;
  return html`${warnings.length ? warnings.map((w) => html`<div class="warning" role="alert">${w}</div>`) : html`<p class="muted">No warnings.</p>`}
<table><thead><tr><th>Queue</th><th class="n">Ready</th><th class="n">Scheduled</th><th class="n">Running</th><th class="n">Retrying</th><th class="n">Dead</th>
<th class="n">Oldest ready</th><th>Last hour</th><th></th></tr></thead><tbody>
${rows.length === 0 ? html`<tr><td colspan="9" class="muted">No queues yet.</td></tr>` : ""}
${rows.map((q) => html`<tr data-queue="${q.queue}"><td>${q.queue} ${q.paused ? html`<span class="badge paused">paused</span>` : ""}</td>
${n(q, "ready")}${n(q, "scheduled")}${n(q, "running")}${n(q, "retrying")}${n(q, "dead")}
<td class="n">${q.oldestReadyAgeMs === null ? "—" : age(q.oldestReadyAgeMs)}</td><td>${chart(d.throughput.get(q.queue) ?? [])}</td>
<td>${q.paused ? action(v, "/queues/resume", { queue: q.queue }, "Resume") : action(v, "/queues/pause", { queue: q.queue }, "Pause")}</td></tr>`)}
</tbody></table><p class="muted">At ${d.inspection.at.toISOString()}; counts above ${d.inspection.exactUpTo.toLocaleString("en")} are estimates (~).</p>`;
}

function overviewWarnings(d: OverviewData): string[] {
  const out: string[] = [];
  for (const h of d.health.xminHolders) {
    out.push(`A ${h.kind} (${h.who}) holds back the xmin horizon by ${h.xidAge.toLocaleString("en")} transactions${
      h.heldForMs === null ? "" : `, open for ${age(h.heldForMs)}`}: VACUUM cannot remove finished jobs until it ends (${h.detail}).`);
  }
  const table = d.health.jobsTable;
  if (table?.deadTuplesPiling) out.push(`Dead rows are piling up in pgq.jobs: ${table.deadTuples.toLocaleString("en")} dead, ${table.liveTuples.toLocaleString("en")} live.`);
  if (table?.autovacuumBehind) {
    out.push(`Autovacuum is behind on pgq.jobs: last run ${table.lastAutovacuumAt ? table.lastAutovacuumAt.toISOString() : "never"}, ${table.deadTuples.toLocaleString("en")} dead rows waiting.`);
  }
  const served = new Set(d.workers.filter((w) => w.alive).flatMap((w) => w.queues));
  for (const q of d.inspection.queues) {
    if (q.ready > 0 && !q.paused && !served.has(q.queue)) out.push(`No live worker takes jobs from ${q.queue}, and ${q.ready.toLocaleString("en")} are ready.`);
  }
  return out;
}

/**
 * Completed (green) and failed (red) per minute over the last hour, as inline SVG bars, the
 * current minute last; while the chart is still filling the hour in, it says how much it shows.
 */
function chart(points: ThroughputPoint[]): Html {
  const max = Math.max(1, ...points.map((p) => p.completed + p.failed));
  const total = points.reduce((s, p) => ({ completed: s.completed + p.completed, failed: s.failed + p.failed }), { completed: 0, failed: 0 });
  const rate = total.completed + total.failed === 0 ? 0 : (100 * total.failed) / (total.completed + total.failed);
  const about = points.some((p) => p.estimated) ? "~" : "";
  const whole = points.length >= HOUR_MINUTES;
  const offset = HOUR_MINUTES - points.length;
  return html`<svg class="chart" width="120" height="24" viewBox="0 0 120 24" role="img" aria-label="${about}${total.completed} completed, ${about}${total.failed} failed in the last ${whole ? "hour" : `${points.length} minutes`}">${points.map((p, i) => {
    const ok = (22 * p.completed) / max;
    const bad = (22 * p.failed) / max;
    return html`<rect class="ok" x="${(offset + i) * 2}" y="${24 - ok}" width="1.6" height="${ok}"><title>${p.minute.toISOString().slice(11, 16)}: ${p.completed} completed, ${p.failed} failed</title></rect><rect class="bad" x="${(offset + i) * 2}" y="${24 - ok - bad}" width="1.6" height="${bad}"></rect>`;
  })}</svg> <span class="muted throughput">${about}${total.completed.toLocaleString("en")} done · ${rate.toFixed(1)}% failed${whole ? "" : ` · last ${points.length} min so far`}</span>`;
}

export function age(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export type JobsQuery = {
  queue?: string;
  state?: ListedState;
  id?: string;
  payload?: string;
};

/** The state filter's choices, by where the jobs are. */
const STATE_CHOICES: readonly [string, readonly [ListedState, string][]][] = [
  ["Live", [["ready", "ready"], ["scheduled", "scheduled"], ["running", "running"], ["retrying", "retrying"]]],
  ["Dead (to retry or delete)", [["dead", "dead"]]],
  ["Finished (history)", FINISHED_LISTINGS.map((s) => [s, s === "finished" ? "any finished" : s])],
];

/**
 * The list, with its bulk actions: dead jobs are retried or deleted, live ones cancelled, ticked
 * or all that match (a whole queue's live jobs, or the dead jobs of a queue or of all of them).
 * Finished jobs have none: each links to its page, with its result.
 */
export function jobsPage(v: View, query: JobsQuery, page: JobPage, bulk: Count | undefined): Html {
  const dead = query.state === "dead";
  const finished = (FINISHED_LISTINGS as readonly (ListedState | undefined)[]).includes(query.state);
  const selectable = !v.readOnly && !finished && page.jobs.length > 0;
  const nextUrl = page.next ? `${v.base}/jobs?${new URLSearchParams({ ...definedOnly(query), cursor: page.next })}` : undefined;
  const bulkFields = definedOnly({ queue: query.queue });
  const n = bulk ? `${bulk.estimated ? "~" : ""}${bulk.n.toLocaleString("en")}` : "";
  return html`<h1>Jobs</h1>
<form class="filters" method="get" action="${v.base}/jobs">
<label>Queue<input name="queue" value="${query.queue ?? ""}"></label>
<label>State<select name="state"><option value="">any live</option>${STATE_CHOICES.map(([group, choices]) => html`<optgroup label="${group}">${
  choices.map(([s, label]) => html`<option value="${s}" ${s === query.state ? html`selected` : ""}>${label}</option>`)}</optgroup>`)}</select></label>
<label>Id<input name="id" value="${query.id ?? ""}" inputmode="numeric" size="8"></label>
<label>Payload contains<input name="payload" value="${query.payload ?? ""}" placeholder='{"user":42} or text'></label>
<button>Filter</button></form>
${bulk && bulk.n > 0 ? html`<p>${dead
    ? html`${action(v, "/jobs/retry", { ...bulkFields, scope: "all" }, `Retry all ${n} matching`)} ${action(v, "/jobs/delete", { ...bulkFields, scope: "all" }, `Delete all ${n} matching`)}`
    : action(v, "/jobs/cancel", { ...bulkFields, scope: "all" }, `Cancel all ${n} in ${query.queue ?? ""}`)}</p>` : ""}
${selectable ? html`<form method="post" id="selected" action="${v.base}/jobs/${dead ? "retry" : "cancel"}"><input type="hidden" name="_csrf" value="${v.csrf}">` : ""}
<table><thead><tr>${selectable ? html`<th></th>` : ""}<th>Id</th><th>Queue</th><th>State</th><th>Payload</th><th class="n">Attempts</th><th>${dead ? "Died" : finished ? "Finished" : "Runs at"}</th><th>Last error</th></tr></thead><tbody>
${page.jobs.length === 0 ? html`<tr><td colspan="8" class="muted">No jobs match${page.walkStopped ? " in this stretch" : ""}.</td></tr>` : ""}
${page.jobs.map((j) => html`<tr>${selectable ? html`<td><input type="checkbox" name="ids" value="${j.id}" aria-label="select job ${j.id}"></td>` : ""}
<td><a href="${v.base}/jobs/${j.id}">${j.id}</a></td><td>${j.queue}</td><td><span class="badge ${j.state}">${j.state}</span></td>
<td><code>${j.payloadPreview}</code></td><td class="n">${j.attempts}/${j.maxAttempts}</td><td>${j.at.toISOString()}</td>
<td>${j.lastError ? j.lastError.split("\n", 1)[0] : ""}</td></tr>`)}
</tbody></table>
${selectable ? html`<p>${dead ? html`<button>Retry selected</button> <button formaction="${v.base}/jobs/delete">Delete selected</button>` : html`<button>Cancel selected</button>`}</p></form>` : ""}
<p>${page.walkStopped ? html`<span class="muted">Searched ${page.walked.toLocaleString("en")} jobs without filling the page. </span>` : ""}
${nextUrl ? html`<a href="${nextUrl}" rel="next">${page.walkStopped ? "Keep searching" : "Next page"} →</a>` : html`<span class="muted">End of the list.</span>`}</p>`;
}

function definedOnly(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
}

export function confirmPage(v: View, path: string, fields: Record<string, string | string[]>, question: string, backTo: string): Html {
  return html`<h1>Confirm</h1><p>${question}</p>${action(v, path, { ...fields, confirmed: "1" }, "Yes, do it")} <a href="${v.base}${backTo}">No, go back</a>`;
}

const WAITING_OR_RUNNING = new Set(["ready", "scheduled", "running", "retrying"]);

export function jobPage(v: View, job: JobDetail): Html {
  const errors = job.errors as JobErrorEntry[];
  return html`<h1>Job ${job.id} <span class="badge ${job.state}">${job.state}</span></h1>
<p>${job.inDeadJobs ? html`${action(v, "/jobs/retry", { ids: job.id, confirmed: "1" }, "Retry")} ${action(v, "/jobs/delete", { ids: job.id }, "Delete")}` : ""}
${WAITING_OR_RUNNING.has(job.state) ? action(v, `/jobs/${job.id}/cancel`, {}, "Cancel") : ""}</p>
<table><tbody>
<tr><th>Queue</th><td><a href="${v.base}/jobs?${new URLSearchParams({ queue: job.queue })}">${job.queue}</a></td></tr>
<tr><th>Attempts</th><td>${job.attempts} of ${job.maxAttempts}</td></tr>
<tr><th>Priority</th><td>${job.priority}</td></tr>
<tr><th>Worker</th><td>${job.worker ?? html`<span class="muted">none</span>`}</td></tr>
${job.groupKey ? html`<tr><th>Group</th><td>${job.groupKey}</td></tr>` : ""}
${job.dedupeKey ? html`<tr><th>Dedupe key</th><td>${job.dedupeKey}</td></tr>` : ""}
${job.expiresAt ? html`<tr><th>Expires</th><td>${job.expiresAt.toISOString()}</td></tr>` : ""}
<tr><th>Progress</th><td>${job.progress == null ? html`<span class="muted">none reported</span>` : html`<code class="progress">${JSON.stringify(job.progress)}</code>`}</td></tr>
</tbody></table>
<h2>Timeline</h2>${timeline(job, errors)}
<h2>Payload</h2><pre>${JSON.stringify(job.payload, null, 2)}</pre>
<h2>Result</h2>${job.state === "completed" ? html`<pre class="result">${JSON.stringify(job.result, null, 2) ?? "undefined"}</pre>` : html`<p class="muted">${job.state === "running" ? "Not yet: it is running." : job.finishedAt ? `None: it ended ${job.state}.` : "Not yet: it has not run."}</p>`}
<h2>Errors (${errors.length})</h2>
${errors.length === 0 ? html`<p class="muted">No failed attempts.</p>` : [...errors].reverse().map((e) => errorEntry(e))}`;
}

/** What happened to the job and when, oldest first: created, due, each attempt's start or failure, its end or its lease. */
function timeline(job: JobDetail, errors: JobErrorEntry[]): Html {
  const events: { at: Date; what: Html }[] = [{ at: job.createdAt, what: html`Created` }];
  if (job.startedAt) events.push({ at: job.startedAt, what: html`First attempt started` });
  for (const e of errors) events.push({ at: new Date(e.at), what: html`Attempt ${e.attempt} failed${e.worker ? ` on ${e.worker}` : ""}` });
  if (job.finishedAt) events.push({ at: job.finishedAt, what: html`<span class="badge ${job.state}">${job.state}</span>${job.worker ? ` on ${job.worker}` : ""}` });
  else if (job.state === "running" && job.lockedUntil) events.push({ at: job.lockedUntil, what: html`Running on ${job.worker ?? "a worker"}: its lease lapses unless renewed` });
  else if (job.runAt) events.push({ at: job.runAt, what: html`Due` });
  events.sort((a, b) => a.at.getTime() - b.at.getTime());
  return html`<ol class="timeline">${events.map((e) => html`<li><time datetime="${e.at.toISOString()}">${e.at.toISOString()}</time> ${e.what}</li>`)}</ol>`;
}

function errorEntry(e: JobErrorEntry): Html {
  return html`<div class="attempt"><h3>Attempt ${e.attempt} <span class="muted">at ${e.at}${e.worker ? ` on ${e.worker}` : ""}</span></h3>
<p><code>${e.error}</code></p>${e.details ? errorDetails(e.details) : ""}</div>`;
}

function errorDetails(d: ErrorDetails): Html {
  return html`${d.stack ? html`<pre>${d.stack}</pre>` : html`<p>${d.name}: ${d.message}</p>`}
${d.code !== undefined ? html`<p>code: <code>${String(d.code)}</code></p>` : ""}
${d.props ? html`<pre>${JSON.stringify(d.props, null, 2)}</pre>` : ""}
${d.cause ? html`<details open><summary>caused by</summary>${errorDetails(d.cause)}</details>` : ""}`;
}

export function workersPage(v: View, live: Html): Html {
  return html`<h1>Workers</h1><div data-live="${v.base}/fragments/workers">${live}</div>`;
}

export function workersFragment(v: View, workers: WorkerInfo[]): Html {
  return html`<table><thead><tr><th>Name</th><th>Host</th><th class="n">Pid</th><th>Queues</th><th>Mode</th><th class="n">Concurrency</th><th>Status</th><th>Running now</th><th>Last seen</th></tr></thead><tbody>
${workers.length === 0 ? html`<tr><td colspan="9" class="muted">No workers registered.</td></tr>` : ""}
${workers.map((w) => html`<tr><td>${w.name}</td><td>${w.host}</td><td class="n">${w.pid}</td><td>${w.queues.join(", ")}</td><td>${w.mode}</td>
<td class="n">${w.concurrency}</td><td>${w.alive ? html`<span class="badge alive">alive</span>` : html`<span class="badge dead">gone</span>`}</td>
<td>${w.runningJobs.length === 0 ? html`<span class="muted">idle</span>` : w.runningJobs.map((id) => html`<a href="${v.base}/jobs/${id}">${id}</a> `)}</td>
<td>${w.lastSeenAt.toISOString()}</td></tr>`)}</tbody></table>`;
}

export function schedulesPage(v: View, schedules: Schedule[]): Html {
  return html`<h1>Schedules</h1><table><thead><tr><th>Name</th><th>Cron</th><th>Time zone</th><th>Queue</th><th>Payload</th><th>Next tick</th><th>Last tick</th><th></th></tr></thead><tbody>
${schedules.length === 0 ? html`<tr><td colspan="8" class="muted">No schedules.</td></tr>` : ""}
${schedules.map((s) => html`<tr><td>${s.name}</td><td><code>${s.cron}</code></td><td>${s.timezone}</td><td>${s.queue}</td><td><code>${JSON.stringify(s.payload)}</code></td>
<td>${s.nextTickAt.toISOString()}</td><td>${s.lastTickAt?.toISOString() ?? "—"}</td><td>${action(v, "/schedules/delete", { name: s.name }, "Remove")}</td></tr>`)}
</tbody></table>
${v.readOnly ? "" : html`<h2>Add or update a schedule</h2><form class="form" method="post" action="${v.base}/schedules"><input type="hidden" name="_csrf" value="${v.csrf}">
<label>Name<input name="name" required></label><label>Cron (5 fields, or 6 with seconds first)<input name="cron" required placeholder="*/5 * * * *"></label>
<label>Queue<input name="queue" required></label><label>Time zone<input name="timezone" value="UTC"></label>
<label>Payload (JSON)<textarea name="payload" rows="3">null</textarea></label><p><button>Save schedule</button></p></form>`}`;
}

export function topicsPage(subscriptions: Subscription[]): Html {
  return html`<h1>Topic subscriptions</h1><p class="muted">q.publish(topic) puts one job in every queue whose pattern matches ("*" one word, "#" zero or more).</p>
<table><thead><tr><th>Queue</th><th>Pattern</th><th>Since</th></tr></thead><tbody>
${subscriptions.length === 0 ? html`<tr><td colspan="3" class="muted">No subscriptions.</td></tr>` : ""}
${subscriptions.map((s) => html`<tr><td>${s.queue}</td><td><code>${s.pattern}</code></td><td>${s.createdAt.toISOString()}</td></tr>`)}</tbody></table>`;
}

export function enqueuePage(v: View, values: Record<string, string> = {}): Html {
  return html`<h1>Enqueue a job</h1><form class="form" method="post" action="${v.base}/enqueue"><input type="hidden" name="_csrf" value="${v.csrf}">
<label>Queue<input name="queue" required value="${values.queue ?? ""}"></label>
<label>Payload (JSON)<textarea name="payload" rows="6">${values.payload ?? "{}"}</textarea></label>
<label>Priority (lower runs first)<input name="priority" inputmode="numeric" value="${values.priority ?? ""}"></label>
<label>Delay (ms)<input name="delayMs" inputmode="numeric" value="${values.delayMs ?? ""}"></label>
<p><button>Enqueue</button></p></form>`;
}

export function notFound(what: string): Html {
  return html`<h1>Not found</h1><p>${what}</p>`;
}
