// A private PostgreSQL for tests that restart, stop or reconfigure the server, which they
// must not do to the server the other test files share.
import { rm } from "node:fs/promises";
import { after } from "node:test";
import postgres from "postgres";
import { startLocalPostgres, temporaryDataDir, type LocalPostgres } from "../../src/dev/local-postgres.js";
import { migrate } from "../../src/admin/migrate.js";

export interface OwnServer extends LocalPostgres {
  /** A migrated database on this server. */
  databaseUrl: string;
}

export async function ownServer(settings: Record<string, string | number> = {}): Promise<OwnServer> {
  const dataDir = await temporaryDataDir("pgq-own-");
  const server = await startLocalPostgres({
    dataDir,
    binDir: process.env.PGQ_TEST_PG_BIN ?? process.env.PGQ_PG_BIN,
    settings: { fsync: "off", ...settings },
  });
  after(async () => {
    await server.stop("immediate").catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  await admin`create database app`;
  await admin.end();
  const databaseUrl = server.url.replace(/\/postgres$/, "/app");
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await migrate(sql, "pgq");
  await sql.end();
  return Object.assign(server, { databaseUrl });
}
