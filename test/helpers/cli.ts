// Running the real CLI (bin/pgq.js, built into dist/ by `npm run build`) as a child process.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const bin = fileURLToPath(new URL("../../bin/pgq.js", import.meta.url));

export interface CliResult {
  code: number | null;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  databaseUrl?: string;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra node flags, e.g. ["--import", "tsx"]. */
  node?: string[];
  timeoutMs?: number;
}

/** Starts `pgq ...args`; the caller talks to the process. */
export function startCli(args: string[], options: CliOptions = {}): ChildProcess {
  const env = { ...process.env, ...options.env };
  if (options.databaseUrl === undefined) delete env.DATABASE_URL;
  else env.DATABASE_URL = options.databaseUrl;
  return spawn(process.execPath, [...(options.node ?? []), bin, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
}

/** Runs `pgq ...args` to the end, killing it if it outlives timeoutMs. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const started = performance.now();
  const child = startCli(args, options);
  return collect(child, started, options.timeoutMs ?? 20_000, options.input);
}

export function collect(child: ChildProcess, started = performance.now(), timeoutMs = 20_000, input?: string): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin!.end(input ?? "");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pgq ${child.spawnargs.slice(2).join(" ")} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      // Let the pipes drain before resolving.
      setImmediate(() => resolve({ code, signal, stdout, stderr, ms: performance.now() - started }));
    });
  });
}
