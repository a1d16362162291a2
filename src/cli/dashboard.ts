// pgq dashboard: serves the web dashboard (src/dashboard/) until SIGINT or SIGTERM. It listens
// on loopback unless told otherwise, and will not listen anywhere else without credentials:
// the dashboard can retry, delete and enqueue jobs.
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { isIP } from "node:net";
import type { Queue } from "../client.js";
import { dashboard, type DashboardAuth } from "../dashboard/index.js";
import { UsageError } from "./errors.js";
import { createLogger, openSession, type GlobalOptions } from "./session.js";

export interface DashboardCommandOptions {
  port: number;
  host: string;
  readOnly?: boolean;
  token?: string;
  basicAuth?: string;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** Checks the options before anything connects: a usage error says what to add. */
export function dashboardAuth(options: DashboardCommandOptions): DashboardAuth | undefined {
  if (options.token !== undefined && options.basicAuth !== undefined) throw new UsageError("give --token or --basic-auth, not both");
  if (options.token !== undefined) {
    if (options.token.length < 16) throw new UsageError("--token must be at least 16 characters (try: openssl rand -hex 16)");
    return { token: options.token };
  }
  if (options.basicAuth !== undefined) {
    const colon = options.basicAuth.indexOf(":");
    if (colon <= 0 || colon === options.basicAuth.length - 1) throw new UsageError("--basic-auth takes user:password");
    return { basic: { user: options.basicAuth.slice(0, colon), password: options.basicAuth.slice(colon + 1) } };
  }
  if (!LOOPBACK.has(options.host) && !(isIP(options.host) === 4 && options.host.startsWith("127."))) {
    throw new UsageError(`refusing to serve the dashboard on ${options.host} without credentials: add --token ${randomBytes(16).toString("hex")} or --basic-auth user:password`);
  }
  return undefined;
}

/** Serves the dashboard for `q`; resolves with the server and the URL to open. */
export async function serveDashboard(q: Queue, options: DashboardCommandOptions & { auth?: DashboardAuth }): Promise<{ server: Server; url: string }> {
  const handlers = dashboard(q, { readOnly: options.readOnly ?? false, auth: options.auth });
  const server = createServer(handlers.node);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = isIP(options.host) === 6 ? `[${options.host}]` : options.host;
  const auth = options.auth;
  const url = `http://${host}:${port}/${auth && "token" in auth ? `?token=${encodeURIComponent(auth.token)}` : ""}`;
  return { server, url };
}

export async function dashboardCommand(options: DashboardCommandOptions, globals: GlobalOptions): Promise<void> {
  const auth = dashboardAuth(options);
  const log = createLogger(globals, "warn");
  const session = await openSession(globals, log, 6);
  try {
    const { server, url } = await serveDashboard(session.q, { ...options, auth });
    process.stdout.write(`pgq dashboard${options.readOnly ? " (read-only)" : ""}: ${url}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        server.close(() => resolve());
        // Open pages poll for live figures over keep-alive connections that would hold close() open.
        server.closeAllConnections();
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") throw new UsageError(`port ${options.port} on ${options.host} is in use: pick another with --port`);
    throw error;
  } finally {
    await session.close();
  }
}
