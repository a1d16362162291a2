// Latency over time under a steady producer, per 10 s window, optionally with a snapshot held
// (`--scenario held-snapshot`, issue 17): one REPEATABLE READ transaction on another connection
// reads a table and stays open for the whole run, as a long report, a pg_dump or a forgotten
// BEGIN would. It holds back the xmin horizon, so no dead job row can be vacuumed and each claim
// walks the growing dead prefix of its index. Without it (`--scenario steady`) the same run shows
// whether latency stays flat between autovacuum passes.
//
// Each system runs on its own fresh database, one after another on the same server, with its
// standard worker (concurrency 16) in this process, which also runs the producer. Per window:
// jobs enqueued and started, enqueue-to-start p50 and p99 (from the enqueue call's return, as in
// the latency scenario; a handler that starts before that return counts as 0), the backlog, and
// n_dead_tup of the system's job tables.
import postgres from "postgres";
import { now, sleep } from "../clock.js";
import { startProducer } from "../producer.js";
import type { BenchServer } from "../server.js";
import { quantile } from "../stats.js";
import type { System } from "../systems/system.js";

const WINDOW_MS = 10_000;

export interface WindowsOptions {
  holdSnapshot: boolean;
  minutes: number;
  rate: number;
}

interface Window {
  enqueued: number;
  started: number;
  p50: number;
  p99: number;
  backlog: number;
  dead: number;
}

export async function windowsStudy(server: BenchServer, systems: System[], options: WindowsOptions): Promise<void> {
  const what = options.holdSnapshot ? `a REPEATABLE READ snapshot held for ${options.minutes} min` : `no snapshot held, ${options.minutes} min`;
  console.log(`\n## ${options.holdSnapshot ? "Held snapshot" : "Steady"}: producer at ${options.rate} jobs/s (one job per call), ${what}`);
  const summary: string[] = [];
  for (const system of systems) {
    const windows = await runOne(server, system, options);
    const first = windows[0];
    const last = windows.at(-1);
    if (first && last) {
      summary.push(
        `| ${system.name} | ${fmt(first.p50)} | ${fmt(last.p50)} | ${(last.p50 / first.p50).toFixed(1)}x | ${fmt(Math.max(...windows.map((w) => w.p99)))} | ` +
          `${Math.max(...windows.map((w) => w.dead)).toLocaleString("en-US")} | ${last.backlog.toLocaleString("en-US")} |`,
      );
    }
  }
  console.log(`\n### Summary (${what})\n`);
  console.log("| system | p50 first window (ms) | p50 last window (ms) | last / first | worst p99 (ms) | most dead tuples | backlog at the end |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  console.log(summary.join("\n"));
}

async function runOne(server: BenchServer, system: System, options: WindowsOptions): Promise<Window[]> {
  const name = "bench_windows";
  const url = await server.createDatabase(name);
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  const windows: Window[] = [];
  try {
    await system.install(url);
    await admin`create table bench_report (n int)`;
    await admin`insert into bench_report select generate_series(1, 1000)`;
    const conn = await system.connect(url);
    const committedAt: number[] = [];
    let startedInWindow: { i: number; t: number }[] = [];
    let startedTotal = 0;
    const worker = await conn.startWorker("standard", ({ i }) => {
      startedInWindow.push({ i, t: now() });
      startedTotal++;
    });
    // The snapshot holder: a reporting session on a connection of its own.
    const holder = options.holdSnapshot ? await admin.reserve() : undefined;
    if (holder) {
      await holder`begin isolation level repeatable read`;
      await holder`select count(*) from bench_report`;
    }
    const deadTuples = async () => {
      const [row] = await admin<{ dead: number }[]>`
        select coalesce(sum(n_dead_tup), 0)::int as dead from pg_stat_user_tables
        where schemaname = ${system.jobTables.schema} and relname ~ ${system.jobTables.relname.source}`;
      return row!.dead;
    };
    console.log(`\n### ${system.name}\n`);
    console.log("| window (s) | enqueued | started | p50 (ms) | p99 (ms) | backlog | dead tuples |");
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    const producer = startProducer(conn, options.rate, (i, t) => (committedAt[i] = t));
    const start = now();
    let enqueuedBefore = 0;
    try {
      for (let w = 1; w * WINDOW_MS <= options.minutes * 60_000; w++) {
        await sleep(start + w * WINDOW_MS - now());
        const started = startedInWindow;
        startedInWindow = [];
        // A handler may start before its enqueue call has returned: that counts as 0.
        const latencies = started.map(({ i, t }) => Math.max(0, t - (committedAt[i] ?? t)));
        const sent = producer.sent;
        const window: Window = {
          enqueued: sent - enqueuedBefore,
          started: started.length,
          p50: quantile(latencies, 0.5),
          p99: quantile(latencies, 0.99),
          backlog: sent - startedTotal,
          dead: await deadTuples(),
        };
        enqueuedBefore = sent;
        windows.push(window);
        console.log(
          `| ${((w - 1) * WINDOW_MS) / 1000}-${(w * WINDOW_MS) / 1000} | ${window.enqueued} | ${window.started} | ${fmt(window.p50)} | ${fmt(window.p99)} | ${window.backlog} | ${window.dead.toLocaleString("en-US")} |`,
        );
      }
    } finally {
      await producer.stop();
      if (holder) {
        await holder`commit`;
        holder.release();
      }
      await worker.stop();
      await conn.close();
    }
  } finally {
    await admin.end({ timeout: 5 });
    await server.dropDatabase(name);
  }
  return windows;
}

function fmt(ms: number): string {
  return Number.isNaN(ms) ? "n/a" : ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}
