// Process scaling (issue 17): real `pgq work` processes (bin/pgq.js, as users run it) draining one
// pre-filled queue. 1, 2, 4 and 8 processes on the benchmark's server: aggregate jobs/s and the
// most client connections seen. Then 20 processes against a server of its own started with
// max_connections = 100: how many started, the connections they used, what the database spent
// on them while idle (CPU of the postmaster and all its children, live or reaped, from /proc;
// statements per second from pg_stat_statements), and their drain. With --idle-only, only the 20
// processes' idle cost, every statement listed with its rate per process, and no drain.
//
// The clock starts when the backlog's INSERT has committed (its trigger's NOTIFY wakes every
// worker at once) and stops when pgq.jobs holds no job of the queue. Processes are started and
// ready (their "worker started" log line) before the backlog goes in, so start-up is not timed.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres, { type Sql } from "postgres";
import { now, sleep } from "../clock.js";
import { startBenchServer, type BenchServer } from "../server.js";
import { pgqSystem } from "../systems/pgq.js";
import { QUEUE } from "../systems/system.js";
import { fillBacklog } from "./backlog.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "bin/pgq.js");
const HANDLER = join(ROOT, "bench/fixtures/noop-handler.mjs");
const COUNTS = [1, 2, 4, 8];
const MANY = 20;
const SMALL_SERVER_CONNECTIONS = 100;
const IDLE_MS = 30_000;
const READY_BOUND_MS = 60_000;
const DRAIN_BOUND_MS = 300_000;
const SAMPLE_MS = 100;
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface ProcessScalingOptions {
  jobs: number;
  concurrency: number;
  mode: "lease" | "transaction";
  quick: boolean;
  /** Only the 20 idle processes: no drains. */
  idleOnly: boolean;
}

interface WorkerProcess {
  child: ChildProcess;
  /** True once it logged "worker started", false if it exited first. */
  ready: Promise<boolean>;
  exited: Promise<void>;
  /** Its stderr lines that are not info logs (errors, a usage message). */
  complaints: string[];
}

export async function processScalingStudy(server: BenchServer, options: ProcessScalingOptions): Promise<void> {
  const flags = `--mode ${options.mode} --concurrency ${options.concurrency}`;
  if (!options.idleOnly) await scalingRuns(server, options, flags);
  if (process.env.DATABASE_URL) {
    console.log(`\n(${MANY} processes against max_connections = ${SMALL_SERVER_CONNECTIONS} needs a server of the benchmark's own: unset DATABASE_URL)`);
    return;
  }
  const small = await startBenchServer({ max_connections: SMALL_SERVER_CONNECTIONS });
  try {
    await withDatabase(small, (url, sql) => manyProcesses(url, sql, options));
  } finally {
    await small.stop();
  }
}

async function scalingRuns(server: BenchServer, options: ProcessScalingOptions, flags: string): Promise<void> {
  console.log(`\n## Process scaling: \`pgq work ${QUEUE} ${flags}\` processes draining ${options.jobs.toLocaleString("en-US")} pre-filled no-op jobs\n`);
  console.log("| processes | started | jobs/s (aggregate) | seconds | most client connections |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const count of COUNTS) {
    const result = await withDatabase(server, (url, sql) => scalingRun(url, sql, count, options));
    console.log(`| ${count} | ${result.ready} | ${result.rate.toFixed(0)} | ${result.seconds.toFixed(2)} | ${result.peakConnections} |`);
  }
}

async function scalingRun(url: string, sql: Sql, count: number, options: ProcessScalingOptions) {
  const workers = Array.from({ length: count }, () => startWorker(url, options));
  try {
    const ready = (await Promise.all(workers.map((w) => withBound(w.ready, READY_BOUND_MS)))).filter(Boolean).length;
    reportComplaints(workers);
    const drain = await timedDrain(sql, options.jobs);
    return { ready, ...drain };
  } finally {
    await stopAll(workers);
  }
}

async function manyProcesses(url: string, sql: Sql, options: ProcessScalingOptions): Promise<void> {
  const [{ max }] = await sql<{ max: number }[]>`select current_setting('max_connections')::int as max`;
  console.log(`\n## ${MANY} \`pgq work\` processes against a server with max_connections = ${max}\n`);
  const postmaster = await postmasterOf(sql);
  const floor = serverTicks(postmaster);
  await sleep(IDLE_MS);
  const floorPercent = cpuPercent(serverTicks(postmaster) - floor);
  console.log(`- the server alone, before any process starts, for ${IDLE_MS / 1000} s: ${floorPercent.toFixed(2)}% of one core`);
  const workers = Array.from({ length: MANY }, () => startWorker(url, options));
  try {
    const ready = (await Promise.all(workers.map((w) => withBound(w.ready, READY_BOUND_MS)))).filter(Boolean).length;
    const exited = workers.filter((w) => w.child.exitCode !== null).length;
    console.log(`- started: ${ready} of ${MANY}${exited ? `; ${exited} exited` : ""}`);
    reportComplaints(workers);
    await sleep(2000); // let start-up (migration checks, first claims) settle before measuring idleness
    console.log(`- client connections once started and idle: ${await clientConnections(sql)}`);

    const idle = await idleCost(sql, postmaster, workers);
    console.log(
      `- idle for ${IDLE_MS / 1000} s: database processes used ${idle.serverCpuPercent.toFixed(2)}% of one core ` +
        `(${(idle.serverCpuPercent / availableParallelism()).toFixed(2)}% of the machine's ${availableParallelism()} cores); ` +
        `${idle.statementsPerSecond.toFixed(1)} statements/s (pg_stat_statements); the ${ready} worker processes used ${idle.workersCpuPercent.toFixed(2)}% of one core`,
    );
    if (options.idleOnly) {
      printStatements(idle.statements, ready);
      return;
    }
    const top = idle.statements.slice(0, 3).map((s) => `${perSecond(s.calls).toFixed(2)}/s ${s.query.slice(0, 70)}`);
    if (top.length) console.log(`  most frequent while idle: ${top.join("; ")}`);

    const drain = await timedDrain(sql, options.jobs);
    console.log(`- drain of ${options.jobs.toLocaleString("en-US")} jobs: ${drain.rate.toFixed(0)} jobs/s; most client connections during it: ${drain.peakConnections} of ${max}`);
    reportComplaints(workers);
  } finally {
    await stopAll(workers);
  }
}

/** Fills the queue once the workers wait, then times the drain and samples the connections. */
async function timedDrain(sql: Sql, jobs: number) {
  await fillBacklog(sql, jobs, 0, false);
  const start = now();
  let peakConnections = 0;
  let left = jobs;
  while (left > 0 && now() - start < DRAIN_BOUND_MS) {
    await sleep(SAMPLE_MS);
    peakConnections = Math.max(peakConnections, await clientConnections(sql));
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from pgq.jobs where queue = ${QUEUE}`;
    left = row!.n;
  }
  const seconds = (now() - start) / 1000;
  if (left > 0) console.error(`  drain stopped after ${DRAIN_BOUND_MS / 1000} s with ${left} jobs left`);
  return { seconds, rate: (jobs - left) / seconds, peakConnections };
}

/** Client connections to this database, not counting the study's own. */
async function clientConnections(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and backend_type = 'client backend' and application_name <> 'pgq-bench-study'`;
  return row!.n;
}

/** The server's main process: the parent of this session's backend. */
async function postmasterOf(sql: Sql): Promise<number> {
  const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return procStat(backend!.pid)!.ppid;
}

const cpuPercent = (ticks: number) => (ticks / TICKS_PER_SECOND / (IDLE_MS / 1000)) * 100;

async function idleCost(sql: Sql, postmaster: number, workers: WorkerProcess[]) {
  const workerPids = workers.filter((w) => w.child.exitCode === null).map((w) => w.child.pid!);
  const before = serverTicks(postmaster);
  const workersBefore = cpuTicks(workerPids);
  await sql`select pg_stat_statements_reset()`;
  await sleep(IDLE_MS);
  const after = serverTicks(postmaster);
  const workersAfter = cpuTicks(workerPids);
  const statements = await sql<IdleStatement[]>`
    select calls::int as calls, total_exec_time::float8 as "totalMs", regexp_replace(query, '\\s+', ' ', 'g') as query from pg_stat_statements
    where dbid = (select oid from pg_database where datname = current_database()) and query not like '%pg_stat%'
    order by calls desc`;
  return {
    serverCpuPercent: cpuPercent(after - before),
    workersCpuPercent: cpuPercent(spent(workersBefore, workersAfter)),
    statementsPerSecond: perSecond(statements.reduce((sum, s) => sum + s.calls, 0)),
    statements: [...statements],
  };
}

interface IdleStatement {
  calls: number;
  totalMs: number;
  query: string;
}

const perSecond = (calls: number) => calls / (IDLE_MS / 1000);

/** Every statement run while idle: calls/s in all, per process, and execution time per second. */
function printStatements(statements: IdleStatement[], processes: number): void {
  console.log(`\n| calls/s (all ${processes}) | calls/s per process | exec ms/s (all) | statement |`);
  console.log("| --- | --- | --- | --- |");
  for (const s of statements) {
    const rate = perSecond(s.calls);
    console.log(`| ${rate.toFixed(2)} | ${(rate / processes).toFixed(3)} | ${perSecond(s.totalMs).toFixed(2)} | \`${s.query.slice(0, 110).replaceAll("|", "\\|")}\` |`);
  }
}

/**
 * All the CPU the server has used, in clock ticks: the postmaster's own and its live children's
 * (from /proc/<pid>/schedstat, in ns: ticks truncated per process would add up to a tick of noise
 * for each of a hundred backends), and that of the children it has reaped (cutime + cstime:
 * backends that came and went, such as connections opened for one statement). The difference of
 * two readings is exact, whatever started or ended between them.
 */
function serverTicks(postmaster: number): number {
  const own = procStat(postmaster)!;
  let total = onCpuTicks(postmaster) + own.cutime + own.cstime;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    if (procStat(Number(entry))?.ppid === postmaster) total += onCpuTicks(Number(entry));
  }
  return total;
}

/** The time a process (PostgreSQL's are single-threaded) has spent on a CPU, in ticks; 0 once it is gone. */
function onCpuTicks(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / (1e9 / TICKS_PER_SECOND);
  } catch {
    return 0;
  }
}

/** utime + stime of each live pid; a process that ends meanwhile is lost (undercounted), one that starts is counted whole. */
function cpuTicks(pids: number[]): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const pid of pids) {
    const stat = procStat(pid);
    if (stat) ticks.set(pid, stat.utime + stat.stime);
  }
  return ticks;
}

/** The fields of /proc/<pid>/stat that count CPU, in clock ticks, and the parent; undefined once the process is gone. */
function procStat(pid: number): { ppid: number; utime: number; stime: number; cutime: number; cstime: number } | undefined {
  try {
    // The command name, in parentheses, may contain spaces: fields are counted after it.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ").map(Number);
    return { ppid: fields[1]!, utime: fields[11]!, stime: fields[12]!, cutime: fields[13]!, cstime: fields[14]! };
  } catch {
    return undefined;
  }
}

function spent(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, t] of after) total += t - (before.get(pid) ?? 0);
  return total;
}

function startWorker(url: string, options: ProcessScalingOptions): WorkerProcess {
  const child = spawn(
    process.execPath,
    [CLI, "--log-format", "json", "work", QUEUE, "--handler", HANDLER, "--mode", options.mode, "--concurrency", String(options.concurrency)],
    { env: { ...process.env, DATABASE_URL: url }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const complaints: string[] = [];
  let buffered = "";
  const ready = new Promise<boolean>((resolve) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.includes('"msg":"worker started"')) resolve(true);
        else if (!/"level":(10|20|30)\b/.test(line) && line.trim()) complaints.push(shortened(line));
      }
    });
    child.on("exit", () => resolve(false));
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return { child, ready, exited, complaints };
}

/** A JSON log record as its message and error message; any other line as it is. */
function shortened(line: string): string {
  try {
    const record = JSON.parse(line) as { msg?: string; err?: { message?: string } };
    return [record.msg, record.err?.message].filter(Boolean).join(": ");
  } catch {
    return line.slice(0, 300);
  }
}

function reportComplaints(workers: WorkerProcess[]): void {
  const all = workers.flatMap((w) => w.complaints.splice(0));
  const distinct = [...new Set(all)];
  for (const line of distinct.slice(0, 5)) console.log(`  worker stderr (${all.filter((l) => l === line).length}x): ${line}`);
}

/** SIGTERM (a graceful stop), then SIGKILL whatever is still running after 30 s. */
async function stopAll(workers: WorkerProcess[]): Promise<void> {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGTERM");
  const stopped = await withBound(Promise.all(workers.map((w) => w.exited)).then(() => true), 30_000);
  if (!stopped) for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  await Promise.all(workers.map((w) => w.exited));
}

function withBound(promise: Promise<boolean>, ms: number): Promise<boolean> {
  return Promise.race([promise, sleep(ms).then(() => false)]);
}

async function withDatabase<T>(server: BenchServer, fn: (url: string, sql: Sql) => Promise<T>): Promise<T> {
  const name = "bench_processes";
  const url = await server.createDatabase(name);
  const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: "pgq-bench-study" } });
  try {
    await pgqSystem("lease").install(url);
    return await fn(url, sql);
  } finally {
    await sql.end({ timeout: 5 });
    await server.dropDatabase(name);
  }
}

/** bin/pgq.js runs dist/: whether dist/ is at least as new as src/ (checked before any server starts). */
export async function builtFromSource(): Promise<boolean> {
  const built = await stat(join(ROOT, "dist/cli/main.js")).then((s) => s.mtimeMs, () => 0);
  const newest = async (dir: string): Promise<number> => {
    let latest = 0;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      latest = Math.max(latest, entry.isDirectory() ? await newest(path) : (await stat(path)).mtimeMs);
    }
    return latest;
  };
  return built >= (await newest(join(ROOT, "src")));
}
