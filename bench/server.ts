// The PostgreSQL the benchmark runs against: DATABASE_URL if set, else a server of our own,
// started the way the tests start theirs but with the durability a production server has
// (fsync and synchronous_commit on, the defaults), since commit cost is part of what we measure.
import { rm } from "node:fs/promises";
import postgres, { type Sql } from "postgres";
import { startLocalPostgres, temporaryDataDir, type LocalPostgres } from "../src/dev/local-postgres.js";

export interface BenchServer {
  /** What ran the benchmark: a version string and where it came from. */
  description: string;
  /** pg_stat_statements is loaded, so statements per job can be counted. */
  statementStats: boolean;
  /** An empty database of its own, created from `template` when given. */
  createDatabase(name: string, template?: string): Promise<string>;
  dropDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** `settings` override the server's (max_connections, say); they do not apply to DATABASE_URL. */
export async function startBenchServer(settings: Record<string, string | number> = {}): Promise<BenchServer> {
  let local: LocalPostgres | undefined;
  let dataDir: string | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    dataDir = await temporaryDataDir("pgq-bench-");
    local = await startLocalPostgres({
      dataDir,
      settings: {
        shared_preload_libraries: "pg_stat_statements",
        // Room for the peers' pools, our own and pgq's transaction slots at once.
        max_connections: 300,
        shared_buffers: "256MB",
        ...settings,
      },
    });
    url = local.url;
  }
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  const [{ version }] = (await admin`select version()`) as unknown as [{ version: string }];
  const statementStats = await admin`create extension if not exists pg_stat_statements`.then(() => true, () => false);
  return {
    description: `${version.split(" on ")[0]}${local ? ` (started by the benchmark, ${local.binDir})` : " (DATABASE_URL)"}`,
    statementStats,
    async createDatabase(name, template) {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.unsafe(`create database ${name}${template ? ` template ${template}` : ""}`);
      if (statementStats && !template) await withDatabase(urlFor(url!, name), (sql) => sql`create extension if not exists pg_stat_statements`);
      return urlFor(url!, name);
    },
    async dropDatabase(name) {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
    },
    async stop() {
      await admin.end({ timeout: 5 });
      await local?.stop("fast").catch((e) => console.error(`could not stop the benchmark's PostgreSQL: ${e}`));
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function urlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs `fn` on a short-lived connection to `url`. */
export async function withDatabase<T>(url: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
