// `npm run dev:db`: the development database that .gmrc points graphile-migrate at, a local
// PostgreSQL on 127.0.0.1:55432 with its data in .pgq/dev-postgres, left running (a second
// call finds it running). `npm run dev:db -- stop` stops it; its data stays.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { startLocalPostgres } from "../src/dev/local-postgres.js";

const PORT = 55432;
/** .gmrc's connectionString; graphile-migrate makes the shadow database itself. */
const DATABASE = "pgq_dev";
const dataDir = resolve(".pgq/dev-postgres");

if (process.argv[2] === "stop") {
  // Reusing the running server is how its handle is had; a stopped one is not started to be stopped.
  if (existsSync(join(dataDir, "postmaster.pid"))) await (await startLocalPostgres({ dataDir, port: PORT })).stop();
  console.log("the development PostgreSQL is stopped (its data stays in .pgq/dev-postgres)");
} else {
  const server = await startLocalPostgres({ dataDir, port: PORT });
  if (server.port !== PORT) throw new Error(`.pgq/dev-postgres is running on port ${server.port}, not ${PORT}: stop it with npm run dev:db -- stop`);
  const sql = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    const [exists] = await sql`select from pg_database where datname = ${DATABASE}`;
    if (!exists) await sql.unsafe(`create database ${DATABASE}`);
  } finally {
    await sql.end();
  }
  console.log(`development PostgreSQL on ${server.url.replace(/\/postgres$/, `/${DATABASE}`)} (npm run dev:db -- stop stops it)`);
}
