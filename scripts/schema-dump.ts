// `npm run schema:dump`: rewrites migrations/schema.sql from a database that pgq's own runner
// has just migrated, on a throwaway local PostgreSQL (PGQ_PG_BIN picks its binaries), so the
// result never depends on what a development database has been through.
import { rm, writeFile } from "node:fs/promises";
import postgres from "postgres";
import { migrate } from "../src/admin/migrate.js";
import { startLocalPostgres, temporaryDataDir } from "../src/dev/local-postgres.js";
import { SNAPSHOT_FILE, schemaSnapshot } from "../src/dev/schema-snapshot.js";

const dataDir = await temporaryDataDir("pgq-schema-");
try {
  const server = await startLocalPostgres({ dataDir, settings: { fsync: "off" } });
  try {
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      await migrate(sql, "pgq");
      await writeFile(SNAPSHOT_FILE, await schemaSnapshot(sql, "pgq"));
    } finally {
      await sql.end();
    }
  } finally {
    await server.stop("immediate");
  }
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
console.log(`wrote ${SNAPSHOT_FILE}`);
