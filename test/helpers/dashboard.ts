// Talking to the dashboard as a browser's form would: a session cookie, the page's CSRF token,
// and same-origin headers. Dead jobs are made by moving live ones, as the worker leaves them.
import type { Sql } from "postgres";
import type { Queue } from "../../src/index.js";

export class Browser {
  readonly cookies = new Map<string, string>();

  constructor(readonly fetch: (request: Request) => Promise<Response>, readonly origin = "http://dash.test", readonly headers: Record<string, string> = {}) {}

  async request(method: string, path: string, init: { body?: Record<string, string | string[]>; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers({ host: new URL(this.origin).host, ...this.headers, ...init.headers });
    if (this.cookies.size > 0) headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    let body: URLSearchParams | undefined;
    if (init.body) {
      body = new URLSearchParams();
      for (const [k, v] of Object.entries(init.body)) for (const value of [v].flat()) body.append(k, value);
      headers.set("content-type", "application/x-www-form-urlencoded");
    }
    const response = await this.fetch(new Request(`${this.origin}${path}`, { method, headers, body, redirect: "manual" }));
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return response;
  }

  get(path: string): Promise<Response> {
    return this.request("GET", path);
  }

  /** The CSRF token in a page's forms. */
  async token(path = "/"): Promise<string> {
    const page = await (await this.get(path)).text();
    const match = /name="_csrf" value="([^"]+)"/.exec(page);
    if (!match) throw new Error(`no form on ${path}`);
    return match[1]!;
  }

  /** A POST as the dashboard's own page sends it. */
  async post(path: string, body: Record<string, string | string[]>, csrf?: string, headers: Record<string, string> = { origin: this.origin, "sec-fetch-site": "same-origin" }): Promise<Response> {
    return this.request("POST", path, { body: { ...body, _csrf: csrf ?? (await this.token()) }, headers });
  }
}

/** Moves live jobs to dead_jobs with a two-attempt error history, as a worker would. */
export async function bury(q: Queue, db: Sql, queue: string, payloads: unknown[]): Promise<string[]> {
  // Due in an hour: a worker serving the queue must not take them before they are moved.
  const ids = await q.enqueueMany(queue, payloads, { maxAttempts: 2, delayMs: 3_600_000 });
  const details = { name: "Error", message: "the printer is on fire <b>", stack: "Error: the printer is on fire <b>\n    at print (printer.js:1:1)", cause: { name: "Error", message: "out of toner" } };
  await db`
    with gone as (delete from pgq.jobs where id = any(${ids}::bigint[]) returning *)
    insert into pgq.dead_jobs (id, queue, payload, priority, attempts, max_attempts, backoff_base_ms, backoff_max_ms,
                               timeout_ms, dedupe_key, group_key, last_error, errors, created_at, died_at)
    select id, queue, payload, priority, 2, max_attempts, backoff_base_ms, backoff_max_ms, timeout_ms, dedupe_key, group_key,
           'Error: the printer is on fire <b>',
           jsonb_build_array(jsonb_build_object('attempt', 1, 'at', now(), 'worker', 'w1', 'error', 'jammed'),
                             jsonb_build_object('attempt', 2, 'at', now(), 'worker', 'w1', 'error', 'Error: the printer is on fire <b>', 'details', ${JSON.stringify(details)}::text::jsonb)),
           created_at, now()
    from gone`;
  return ids;
}
