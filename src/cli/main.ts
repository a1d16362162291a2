// The pgq command line: commander parses, the library works, and this file maps the outcome to
// an exit code (see errors.ts).
import { Command, Option } from "commander";
import { DEFAULT_SCHEMA } from "../db/schema.js";
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY } from "../job-defaults.js";
import { dashboardCommand } from "./dashboard.js";
import { deadListCommand, deadPurgeCommand, deadRetryCommand } from "./dead.js";
import { demoCommand } from "./demo.js";
import { enqueueCommand } from "./enqueue.js";
import { describeError, exitCodeFor } from "./errors.js";
import { inspectCommand } from "./inspect.js";
import { cancelCommand, finalState, historyCommand, jobCommand } from "./jobs.js";
import { migrateCommand } from "./migrate.js";
import { durationOrDefault, limitOrNone, pauseCommand, queueListCommand, queueSetCommand, rateOrNone } from "./queues.js";
import { scheduleAddCommand, scheduleListCommand, scheduleRemoveCommand } from "./schedule.js";
import { duration, integer, isoDate, jobId } from "./options.js";
import { LOG_FORMATS } from "./log-lines.js";
import { LOG_LEVELS, type GlobalOptions } from "./session.js";
import { workCommand } from "./work.js";

const program = new Command("pgq")
  .description("A durable job queue that lives entirely in PostgreSQL.")
  .addOption(new Option("--database-url <url>", "the database (default: $DATABASE_URL)"))
  .addOption(new Option("--schema <name>", "the schema pgq's tables live in").default(DEFAULT_SCHEMA))
  .addOption(new Option("--log-level <level>", "pino log level, on stderr (default: warn; info for `work` off a terminal)").choices(LOG_LEVELS))
  .addOption(new Option("--log-format <format>", "pretty: one readable line per record (default on a terminal); json: pino's JSON lines").choices(LOG_FORMATS))
  .addOption(new Option("--pooler <mode>", "transaction: through PgBouncer in transaction mode (no prepared statements; workers poll)").choices(["none", "transaction"]))
  .showSuggestionAfterError()
  .exitOverride()
  // Errors are printed once, by run() below, as one line.
  .configureOutput({ outputError: () => undefined });

/** Global options may come before or after the command name. */
function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

program
  .command("migrate")
  .description("create or upgrade pgq's schema (idempotent)")
  .option("--print", "write the SQL to stdout instead of applying it, for your own migration tool")
  .action((options, command: Command) => migrateCommand(options, globals(command)));

program
  .command("enqueue")
  .description("enqueue a job and print its id; - reads the payload from stdin")
  .argument("<queue>", "queue name")
  .argument("[json]", "the payload, as JSON (- for stdin)")
  .option("--priority <n>", `lower runs first (default ${DEFAULT_PRIORITY})`, integer(-(2 ** 31)))
  .addOption(new Option("--run-at <iso>", "not before this time, e.g. 2030-01-31T09:00:00Z").argParser(isoDate).conflicts("delay"))
  .option("--delay <ms>", "not before this long from now: milliseconds, or 30s, 5m, 2h", duration({ bareMs: true }))
  .option("--max-attempts <n>", `attempts before the job moves to dead_jobs (default ${DEFAULT_MAX_ATTEMPTS})`, integer(1))
  .option("--dedupe-key <key>", "at most one live job with this key per queue")
  .option("--group <key>", "jobs with the same group key run one at a time, in order")
  .addOption(new Option("--expires-at <iso>", "not started by then, the job never runs: it is finished as expired").argParser(isoDate).conflicts("ttl"))
  .option("--ttl <duration>", "not started this long after it is due, the job never runs, e.g. 10m", duration({ bareMs: false }))
  .option("--file <path>", "enqueue one job per line of this file (- for stdin), in one transaction; prints the ids")
  .action((queue: string, json: string | undefined, options, command: Command) => enqueueCommand(queue, json, options, globals(command)));

program
  .command("work")
  .description("run jobs until SIGINT or SIGTERM (once: finish what is running; twice: release it and exit)")
  .argument("<queue...>", "queues to work on")
  .requiredOption("--handler <module>", "ES module whose default export is a handler (job, ctx) => Promise, or { queue: handler }")
  .option("--concurrency <n>", "jobs run at once", integer(1, 1000), 1)
  .addOption(new Option("--mode <mode>", "transaction: the job commits with the handler's writes; lease: a renewed lease").choices(["transaction", "lease"]).default("transaction"))
  .option("--lease-ms <ms>", "a claim lapses this long after its last renewal (default 30000)", integer(1))
  .option("--timeout-ms <ms>", "an attempt that runs longer fails (default 300000 in transaction mode)", integer(1))
  .option("--poll-interval-ms <ms>", "the safety-net poll when no notification arrives (default 2000)", integer(10))
  .option("--metrics-port <port>", "serve Prometheus metrics at http://<metrics-host>:<port>/metrics (0: any free port)", integer(0, 65535))
  .option("--metrics-host <host>", "the address the metrics listen on; 0.0.0.0 or :: for other machines", "127.0.0.1")
  .action((queues: string[], options, command: Command) => workCommand(queues, options, globals(command)));

program
  .command("inspect")
  .description("jobs per queue and state, oldest ready age, jobs that died in the last minute")
  .option("--json", "machine-readable output")
  .option("--watch", "refresh every second until Ctrl-C")
  .option("--queue <name>", "only this queue, with its running jobs: worker, attempt, start, progress")
  .action((options, command: Command) => inspectCommand(options, globals(command)));

const dead = program.command("dead").description("jobs that exhausted their attempts");
dead
  .command("list")
  .description("the most recent dead jobs, with their attempts and last error")
  .option("--queue <name>", "only this queue")
  .option("--limit <n>", "how many", integer(1, 100_000), 20)
  .option("--json", "machine-readable output, with payloads and every error")
  .action((options, command: Command) => deadListCommand(options, globals(command)));
dead
  .command("retry")
  .description("move dead jobs back to the queue with fresh attempts, in one transaction (all of them if no filter)")
  .option("--queue <name>", "only this queue")
  .option("--id <id...>", "only these jobs", jobId)
  .action((options, command: Command) => deadRetryCommand(options, globals(command)));
dead
  .command("purge")
  .description("delete dead jobs")
  .option("--queue <name>", "only this queue")
  .option("--id <id...>", "only these jobs", jobId)
  .option("--older-than <duration>", "only jobs that died at least this long ago, e.g. 7d, 12h", duration({ bareMs: false }))
  .option("--yes", "confirm deleting every dead job (needed when no filter is given)")
  .action((options, command: Command) => deadPurgeCommand(options, globals(command)));

const schedule = program.command("schedule").description("cron schedules: one job per tick, however many workers run");
schedule
  .command("list")
  .description("every schedule, with its next and last tick")
  .option("--json", "machine-readable output")
  .action((options, command: Command) => scheduleListCommand(options, globals(command)));
schedule
  .command("add")
  .description("create or update a schedule (5 cron fields, or 6 with seconds first)")
  .argument("<name>", "the schedule's name")
  .argument("<cron>", 'e.g. "*/5 * * * *" (quote it)')
  .argument("<queue>", "the queue its jobs go to")
  .argument("[json]", "the jobs' payload, as JSON (default null)")
  .option("--timezone <zone>", "IANA time zone the expression is read in (default UTC)")
  .addOption(new Option("--catch-up <policy>", "after downtime: one job for the missed ticks, or none").choices(["latest", "none"]))
  .action((name: string, cron: string, queue: string, json: string | undefined, options, command: Command) =>
    scheduleAddCommand(name, cron, queue, json, options, globals(command)));
schedule
  .command("remove")
  .description("delete a schedule; jobs it already enqueued stay")
  .argument("<name>", "the schedule's name")
  .action((name: string, _options, command: Command) => scheduleRemoveCommand(name, globals(command)));

program
  .command("pause")
  .description("stop every worker claiming from a queue (running jobs finish; enqueue still works)")
  .argument("<queue>", "queue name")
  .action((queue: string, _options, command: Command) => pauseCommand(queue, true, globals(command)));
program
  .command("resume")
  .description("let workers claim from a paused queue again")
  .argument("<queue>", "queue name")
  .action((queue: string, _options, command: Command) => pauseCommand(queue, false, globals(command)));

const queueCommand = program.command("queue").description("per-queue settings, read by every worker at its next claim");
queueCommand
  .command("set")
  .description("change a queue's settings; options left out keep their value")
  .argument("<queue>", "queue name")
  .option("--concurrency <n>", 'running jobs of the queue across all workers, or "none"', limitOrNone)
  .option("--key-concurrency <n>", 'running jobs per group key, or "none"', limitOrNone)
  .option("--rate <count/duration>", 'jobs started per interval, e.g. 100/1m, or "none"', rateOrNone)
  .option("--key-rate <count/duration>", 'jobs started per interval per group key, e.g. 10/1s, or "none"', rateOrNone)
  .option("--retention <duration>", 'how long finished jobs stay in history, e.g. 7d, 0s, or "default"', durationOrDefault)
  .option("--ttl <duration>", 'jobs not started this long after they are due expire, e.g. 1h, or "default"', durationOrDefault)
  .action((queue: string, options, command: Command) => queueSetCommand(queue, options, globals(command)));
queueCommand
  .command("list")
  .description("every queue with settings of its own")
  .option("--json", "machine-readable output")
  .action((options, command: Command) => queueListCommand(options, globals(command)));
program
  .command("job")
  .description("one job wherever it is (waiting, running, history, dead), with its state and timeline")
  .argument("<id>", "the job's id", (value: string) => jobId(value)[0]!)
  .option("--json", "machine-readable output")
  .action((id: string, options, command: Command) => jobCommand(id, options, globals(command)));

program
  .command("history")
  .description("recently finished jobs, newest first: completed, dead, cancelled, expired")
  .option("--queue <name>", "only this queue")
  .option("--state <state>", "only jobs that ended so: completed, dead, cancelled or expired", finalState)
  .option("--since <duration>", "finished within this long, e.g. 15m, 1h, 2d", duration({ bareMs: false }), 3_600_000)
  .option("--limit <n>", "how many", integer(1, 10_000), 100)
  .option("--json", "machine-readable output, with payloads, results and errors")
  .action((options, command: Command) => historyCommand(options, globals(command)));

program
  .command("cancel")
  .description("cancel jobs: a waiting job never runs, a running one's ctx.signal aborts and nothing it does after counts")
  .argument("[ids...]", "the jobs' ids", (value: string, previous: string[] | undefined) => jobId(value, previous ?? []))
  .option("--queue <name>", "every job of this queue instead, waiting or running")
  .action((ids: string[], options, command: Command) => cancelCommand(ids, options, globals(command)));

program
  .command("dashboard")
  .description("serve the web dashboard until Ctrl-C (loopback only unless --token or --basic-auth is given)")
  .option("--port <n>", "port to listen on (0: any free one)", integer(0, 65535), 8080)
  .option("--host <address>", "address to listen on", "127.0.0.1")
  .option("--read-only", "show everything, change nothing")
  .option("--token <token>", "require this token (Authorization: Bearer, or ?token= once in a browser)")
  .option("--basic-auth <user:password>", "require HTTP basic authentication")
  .action((options, command: Command) => dashboardCommand(options, globals(command)));

program
  .command("demo")
  .description("a one-minute tour: sample jobs run, fail, retry and die, on an embedded PostgreSQL unless DATABASE_URL is set")
  .action((_options, command: Command) => demoCommand(globals(command)));

async function run(): Promise<void> {
  try {
    await program.parseAsync();
  } catch (error) {
    const code = exitCodeFor(error);
    // "commander.help": a command group given without its subcommand; its help is already shown.
    if (code !== 0 && (error as { code?: string }).code !== "commander.help") {
      process.stderr.write(`pgq: ${describeError(error, program.opts<GlobalOptions>().schema ?? DEFAULT_SCHEMA)}\n`);
      const level = program.opts<GlobalOptions>().logLevel;
      if ((level === "debug" || level === "trace") && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    }
    process.exitCode = code;
  }
}

await run();
// A connection attempt to a host that drops packets outlives the command by its connect
// timeout; the command is over, so leave now. (stdout and stderr are synchronous on Linux.)
process.exit();
