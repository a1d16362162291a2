// pgq demo: the whole life of a job in about fifteen seconds. Without DATABASE_URL it starts
// PostgreSQL in .pgq/postgres (a fresh pgq_demo database each run) and stops it at the end.
import { resolve } from "node:path";
import type { Logger } from "pino";
import postgres from "postgres";
import type { Queue } from "../client.js";
import { startLocalPostgres, type LocalPostgres } from "../dev/local-postgres.js";
import { serveDashboard } from "./dashboard.js";
import { count } from "./format.js";
import { renderInspection } from "./inspect.js";
import { DEMO_QUEUES, demoHandlers, enqueueDemoJobs } from "./demo-jobs.js";
import { createLogger, openSession, type GlobalOptions } from "./session.js";
import { stopOnSignals } from "./signals.js";
import { Rate, StatusLine } from "./status-line.js";

const CONCURRENCY = 4;
/** The demo ends by itself when every job has finished, or after this long whatever happens. */
const TIME_LIMIT_MS = 90_000;
const DATA_DIR = ".pgq/postgres";

export async function demoCommand(globals: GlobalOptions): Promise<void> {
  const status = new StatusLine(process.stdout);
  const log = createLogger(globals, "silent", status);
  const say = (line: string) => status.print(line);
  let server: LocalPostgres | undefined;
  let url = globals.databaseUrl ?? process.env.DATABASE_URL;
  try {
    if (url) say(`using the database at ${new URL(url).host} (DATABASE_URL)`);
    else {
      say(`starting PostgreSQL in ${DATA_DIR} (the first run takes a few seconds)…`);
      server = await startLocalPostgres({ dataDir: resolve(DATA_DIR) });
      url = await freshDatabase(server.url, "pgq_demo");
    }
    const session = await openSession({ ...globals, databaseUrl: url }, log, CONCURRENCY + 2);
    try {
      const applied = await session.q.migrate();
      say(applied.length ? `created pgq's schema (${applied.join(", ")})` : "pgq's schema is up to date");
      await tour(session.q, say, status, log);
    } finally {
      await session.close();
    }
  } finally {
    if (server) {
      say(`stopping the demo's PostgreSQL (its data stays in ${DATA_DIR})`);
      await server.stop();
    }
  }
}

async function tour(q: Queue, say: (line: string) => void, status: StatusLine, log: Logger) {
  // Port 8080 as `pgq dashboard` uses, or any free one when something else has it.
  const { server, url } = await serveDashboard(q, { port: 8080, host: "127.0.0.1" })
    .catch(() => serveDashboard(q, { port: 0, host: "127.0.0.1" }));
  say(`the dashboard is at ${url} while the demo runs`);
  try {
    await run(q, say, status, log);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

async function run(q: Queue, say: (line: string) => void, status: StatusLine, log: Logger) {
  const total = await enqueueDemoJobs(q);
  say(`enqueued ${total} jobs: emails, thumbnails, webhooks (some flaky), 5 reminders due in 6 s, and one broken report`);
  say(`starting a worker on ${DEMO_QUEUES.join(", ")} with ${CONCURRENCY} slots\n`);

  const started = performance.now();
  const worker = q.work(DEMO_QUEUES, demoHandlers, { concurrency: CONCURRENCY, pollIntervalMs: 500 });
  let completed = 0;
  let retriedThenCompleted = 0;
  let failedAttempts = 0;
  let dead = 0;
  const shown = new Set<string>();
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  const check = () => completed + dead === total && allDone();
  worker.on("completed", (job, ms) => {
    completed++;
    if (job.attempts > 1) {
      retriedThenCompleted++;
      say(`  ✓ ${job.queue} #${job.id} succeeded on attempt ${job.attempts}`);
    } else if (!shown.has(job.queue)) {
      shown.add(job.queue);
      say(`  ✓ ${job.queue} #${job.id} done in ${Math.round(ms)} ms: ${describe(job.payload)}`);
    }
    check();
  });
  worker.on("failed", (job, error, outcome) => {
    failedAttempts++;
    const message = error instanceof Error ? error.message : String(error);
    if (outcome === "dead") {
      dead++;
      say(`  ☠ ${job.queue} #${job.id} failed its last attempt (${job.attempts}/${job.maxAttempts}): ${message} → moved to dead_jobs`);
    } else say(`  ✗ ${job.queue} #${job.id} attempt ${job.attempts}/${job.maxAttempts} failed: ${message} → will retry`);
    check();
  });

  const rate = new Rate();
  let lastDepth = "";
  const draw = async () => {
    const inspection = await q.inspect().catch(() => undefined);
    if (inspection) {
      const sum = (k: "ready" | "running" | "scheduled" | "retrying") =>
        inspection.queues.filter((s) => DEMO_QUEUES.includes(s.queue)).reduce((n, s) => n + s[k], 0);
      lastDepth = `ready ${sum("ready")} · running ${sum("running")} · retrying ${sum("retrying")} · scheduled ${sum("scheduled")}`;
    }
    const done = completed + dead;
    const line = `${bar(done / total)} ${done}/${total} finished · ${lastDepth} · dead ${dead} · ${rate.sample(done).toFixed(1)} jobs/s`;
    if (status.enabled) status.update(line);
    else if (Math.round((performance.now() - started) / 1000) % 3 === 0) status.print(line);
  };
  const redraw = setInterval(() => void draw(), 1000);
  const byTimeout = new Promise<void>((r) => setTimeout(r, TIME_LIMIT_MS).unref());
  await worker.ready;
  await Promise.race([finished, byTimeout, stopOnSignals(worker, log, status)]);
  await worker.stop();
  clearInterval(redraw);
  await draw();
  status.end();

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  say(`\n${completed + dead === total ? "all done" : "stopped"} in ${seconds} s: ${count(completed)} jobs completed (${retriedThenCompleted} after a retry), ${dead} dead, ${failedAttempts} failed attempts.\n`);
  say(renderInspection(await q.inspect()));
  const deadJobs = await q.deadJobs.list({ limit: 5 });
  if (deadJobs.length > 0) {
    say(`\ndead jobs (what \`pgq dead list\` shows):`);
    for (const j of deadJobs) say(`  #${j.id} ${j.queue} after ${j.attempts} attempts: ${(j.lastError ?? "").split("\n", 1)[0]}`);
  }
  say(`
Next: point pgq at a database of yours and look around:
  export DATABASE_URL=postgres://user@host:5432/db
  npx pgq migrate && npx pgq demo
  npx pgq inspect            # depth per queue and state (--watch for a live view)
  npx pgq dashboard          # the same in a browser, at http://127.0.0.1:8080/
  npx pgq dead list          # then: npx pgq dead retry --id N, or npx pgq dead purge --queue Q`);
}

function describe(payload: unknown): string {
  const text = JSON.stringify(payload);
  return text.length > 70 ? `${text.slice(0, 69)}…` : text;
}

function bar(fraction: number, width = 20): string {
  const filled = Math.round(Math.min(1, fraction) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** A new, empty database on the demo's own server, so every run starts from nothing. */
async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = postgres(serverUrl, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
