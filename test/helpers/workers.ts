// Real worker processes, for tests that kill them: `pgq work` as a user runs it, or a fixture
// script that calls the library. Their output is kept for the test to read, and whichever is
// still running when the test (or, if started outside one, the file) ends is SIGKILLed, so a
// failing test leaves no worker behind to hold the database.
import { fork, type ChildProcess } from "node:child_process";
import { after } from "node:test";
import { collect, startCli, type CliOptions, type CliResult } from "./cli.js";

export interface WorkerProcess {
  child: ChildProcess;
  /** Settles when the process exits, with its exit code or signal and its output. */
  readonly exited: Promise<CliResult>;
  /** Sends `signal` (SIGTERM: a graceful stop) and waits for the exit; SIGKILLs it and fails after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<CliResult>;
}

export interface PgqWorkOptions extends CliOptions {
  /** The handler module, e.g. "test/fixtures/chaos-handler.mjs". */
  handler: string;
  mode?: "transaction" | "lease";
  concurrency?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  /** Serve /metrics on this port (0: any free one; the URL is in the "serving Prometheus metrics" log line). */
  metricsPort?: number;
  /** Options that go before `work`, such as ["--pooler", "transaction"]. */
  globals?: string[];
}

/** How long a worker may live: longer than any test runs, short of forever. */
const LIFETIME_MS = 15 * 60_000;

/** `pgq work <queues> --handler ...` as a child process. */
export function pgqWork(queues: string | string[], options: PgqWorkOptions): WorkerProcess {
  const { handler, mode, concurrency, leaseMs, pollIntervalMs, metricsPort, globals = [], ...cli } = options;
  const flags = Object.entries({ "--mode": mode, "--concurrency": concurrency, "--lease-ms": leaseMs, "--poll-interval-ms": pollIntervalMs, "--metrics-port": metricsPort })
    .flatMap(([flag, value]) => (value === undefined ? [] : [flag, String(value)]));
  return watch(startCli([...globals, "work", ...[queues].flat(), "--handler", handler, ...flags], cli));
}

/** A fixture script (TypeScript, through tsx) run with DATABASE_URL set; it may talk over IPC. */
export function forkWorker(script: string, args: string[], databaseUrl: string): WorkerProcess {
  return watch(fork(script, args, {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    execArgv: ["--import", "tsx"],
    stdio: ["pipe", "pipe", "pipe", "ipc"],
  }));
}

function watch(child: ChildProcess): WorkerProcess {
  const exited = collect(child, performance.now(), LIFETIME_MS);
  // A worker killed for outliving LIFETIME_MS fails whoever awaits it; unawaited, it must not end the file.
  exited.catch(() => undefined);
  const running = () => child.exitCode === null && child.signalCode === null;
  after(async () => {
    if (running()) child.kill("SIGKILL");
    await exited;
  });
  return {
    child,
    exited,
    async stop(signal = "SIGTERM", timeoutMs = 30_000) {
      if (running()) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`the worker did not exit within ${timeoutMs} ms of ${signal}`));
        }, timeoutMs);
      });
      return Promise.race([exited, late]).finally(() => clearTimeout(timer));
    },
  };
}
