// PgBouncer in transaction pooling mode, on loopback in front of a test's PostgreSQL, started
// from Debian's package (.ci/run installs it; nothing is installed here; tests that need it
// pass `needs(pgbouncer)`). Stopped when the test file ends.
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { freePort } from "../../src/dev/local-postgres.js";
import type { Tool } from "./tools.js";

const BINARY = "/usr/sbin/pgbouncer";

export const pgbouncer: Tool = {
  name: "PgBouncer",
  installed: () => existsSync(BINARY),
  install: "apt-get install pgbouncer; .ci/run installs it",
};

export interface Pgbouncer {
  port: number;
  /** `databaseUrl` with its host and port replaced by PgBouncer's. */
  url(databaseUrl: string): string;
  /** What PgBouncer wrote on stderr: its log. */
  readonly log: string;
}

export async function startPgbouncer(serverUrl: string): Promise<Pgbouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || "postgres");
  const password = decodeURIComponent(server.password);
  const dir = await mkdtemp(join(tmpdir(), "pgq-pgbouncer-"));
  const port = await freePort();
  const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
  await writeFile(join(dir, "userlist.txt"), `"${user}" ""\n`);
  await writeFile(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      // Every database name goes to the same server, as the user the test server trusts.
      `* = host=${server.hostname} port=${server.port || 5432} user=${user}${password ? ` password=${quote(password)}` : ""}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "pool_mode = transaction",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "max_client_conn = 500",
      "default_pool_size = 20",
      "",
    ].join("\n"),
  );
  // PgBouncer refuses to run as root: as root, run it as the postgres user, as PostgreSQL is.
  const asUser = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (asUser) {
    for (const file of [dir, join(dir, "userlist.txt"), join(dir, "pgbouncer.ini")]) await chown(file, asUser.uid, asUser.gid);
  }
  const child = spawn(BINARY, [join(dir, "pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"], ...asUser });
  let log = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  after(async () => {
    child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  });

  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`pgbouncer did not start: ${log.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url(databaseUrl) {
      const u = new URL(databaseUrl);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      u.password = "";
      return u.toString();
    },
    get log() {
      return log;
    },
  };
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}
