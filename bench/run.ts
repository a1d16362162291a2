// `npm run bench`: pgq beside graphile-worker and pg-boss (and a hand-written "ceiling"), on the
// same PostgreSQL, each system on a fresh database per measurement, systems interleaved within
// each repetition. Prints the medians and pgq's ratio to each peer.
//
//   npm run bench -- [--quick] [--reps N] [--only id,...] [--systems name,...] [--statements]
//                    [--json FILE] [--scale] [--memory] [--churn] [--telemetry]
//
// --scale, --memory, --churn and --telemetry run pgq-only studies (claim cost at 10k and 5M rows;
// RSS over a 1M-job drain; dead tuples under steady churn; lease-mode drains with telemetry on and
// off, --reps pairs, default 6) that take minutes each, so they run only when asked for.
//
//   npm run bench -- --scenario held-snapshot [--hold-minutes 10] [--rate 1000] [--systems ...]
//   npm run bench -- --scenario steady [--minutes 10] [--rate 1000] [--systems ...]
//   npm run bench -- --scenario process-scaling [--jobs 50000] [--concurrency 16] [--mode lease] [--idle-only]
//
// The long-running scenarios of issue 17, instead of the comparison: latency per 10 s window
// under a fixed-rate producer, with or without a snapshot held (bench/studies/windows.ts), and
// `pgq work` processes draining one queue (bench/studies/process-scaling.ts).
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { Results } from "./report.js";
import { drainStandard, drainTuned } from "./scenarios/drain.js";
import { enqueueBatch, enqueueOne } from "./scenarios/enqueue.js";
import { latency } from "./scenarios/latency.js";
import { churnStudy } from "./studies/churn.js";
import { memoryStudy } from "./studies/memory.js";
import { scaleStudy } from "./studies/scale.js";
import { telemetryStudy } from "./studies/telemetry.js";
import type { Scenario } from "./scenarios/scenario.js";
import { steady } from "./scenarios/steady.js";
import { builtFromSource, processScalingStudy } from "./studies/process-scaling.js";
import { windowsStudy } from "./studies/windows.js";
import { startBenchServer, type BenchServer } from "./server.js";
import { CEILING_OF, ceilingLeaseSystem, ceilingTransactionSystem } from "./systems/ceiling.js";
import { graphileWorkerSystem } from "./systems/graphile-worker.js";
import { pgBossSystem } from "./systems/pg-boss.js";
import { pgqSystem } from "./systems/pgq.js";
import type { System } from "./systems/system.js";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    only: { type: "string" },
    systems: { type: "string" },
    statements: { type: "boolean", default: false },
    json: { type: "string" },
    scale: { type: "boolean", default: false },
    memory: { type: "boolean", default: false },
    churn: { type: "boolean", default: false },
    telemetry: { type: "boolean", default: false },
    scenario: { type: "string" },
    "hold-minutes": { type: "string", default: "10" },
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
    jobs: { type: "string" },
    concurrency: { type: "string", default: "16" },
    mode: { type: "string", default: "lease" },
    "idle-only": { type: "boolean", default: false },
  },
});
const LONG_SCENARIOS = ["held-snapshot", "steady", "process-scaling"];
/** The systems of the windowed scenarios unless --systems names others. */
const WINDOWED_SYSTEMS = ["pgq lease", "pgq transaction", "graphile-worker", "pg-boss"];

const pgqs = [pgqSystem("transaction"), pgqSystem("lease")];
const peers = [graphileWorkerSystem, pgBossSystem];
const allSystems: System[] = [...pgqs, ...peers, ceilingTransactionSystem, ceilingLeaseSystem];
const allScenarios: Scenario[] = [enqueueOne, enqueueBatch, drainStandard, drainTuned, latency, steady];

const reps = Number(flags.reps ?? 2);
if (!Number.isInteger(reps) || reps < 1) usage("--reps needs a positive integer");
const only = flags.only?.split(",");
const scenarios = only ? allScenarios.filter((s) => only.includes(s.id)) : allScenarios;
const systems = flags.systems ? allSystems.filter((s) => flags.systems!.split(",").includes(s.name)) : allSystems;
const studiesOnly = ((flags.scale || flags.memory || flags.churn || flags.telemetry) && !only) || flags.scenario !== undefined;
if (flags.scenario !== undefined && !LONG_SCENARIOS.includes(flags.scenario)) usage(`--scenario is one of ${LONG_SCENARIOS.join(", ")}`);
const positive = (flag: "hold-minutes" | "minutes" | "rate" | "jobs" | "concurrency") => {
  const value = Number(flags[flag]);
  if (!(value > 0)) usage(`--${flag} needs a positive number`);
  return value;
};
if (flags.mode !== "lease" && flags.mode !== "transaction") usage("--mode is lease or transaction");
// Checked here, before a server starts: usage() exits at once.
const long = {
  hold: flags.scenario === "held-snapshot",
  minutes: positive(flags.scenario === "held-snapshot" ? "hold-minutes" : "minutes"),
  rate: positive("rate"),
  jobs: flags.jobs === undefined ? (flags.quick ? 10_000 : 50_000) : positive("jobs"),
  concurrency: positive("concurrency"),
};
if (!studiesOnly && (scenarios.length === 0 || systems.length === 0)) {
  usage(`nothing to run: scenarios are ${allScenarios.map((s) => s.id).join(", ")}; systems are ${allSystems.map((s) => `"${s.name}"`).join(", ")}`);
}

function usage(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

if (flags.scenario === "process-scaling" && !(await builtFromSource())) {
  usage("process-scaling runs bin/pgq.js, whose dist/ is missing or older than src/: run `npm run build` first");
}

const server = await startBenchServer();
// Never leave the server running: not on Ctrl-C or a timeout's SIGTERM, not when a queue library crashes the process.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void server.stop().finally(() => process.exit(130)));
process.on("uncaughtException", (error) => {
  console.error(error);
  void server.stop().finally(() => process.exit(1));
});
try {
  console.log(`# ${new Date().toISOString()}  ${server.description}`);
  if (!studiesOnly) await compare(server);
  if (flags.scenario === "held-snapshot" || flags.scenario === "steady") {
    const chosen = flags.systems ? systems : WINDOWED_SYSTEMS.map((name) => allSystems.find((s) => s.name === name)!);
    await windowsStudy(server, chosen, { holdSnapshot: long.hold, minutes: long.minutes, rate: long.rate });
  }
  if (flags.scenario === "process-scaling") {
    await processScalingStudy(server, {
      jobs: long.jobs,
      concurrency: long.concurrency,
      mode: flags.mode as "lease" | "transaction",
      quick: flags.quick,
      idleOnly: flags["idle-only"],
    });
  }
  if (flags.scale) await scaleStudy(server, flags.quick);
  if (flags.memory) await memoryStudy(server, flags.quick);
  if (flags.churn) await churnStudy(server, flags.quick);
  if (flags.telemetry) await telemetryStudy(server, flags.quick, Number(flags.reps ?? 6));
} finally {
  await server.stop();
}

async function compare(server: BenchServer): Promise<void> {
  const templates = new Map<System, string>();
  for (const [k, system] of systems.entries()) {
    const name = `bench_template_${k}`;
    await system.install(await server.createDatabase(name));
    templates.set(system, name);
  }
  const results = new Results();
  const startedAt = Date.now();
  for (let rep = 0; rep < reps; rep++) {
    for (const scenario of scenarios) {
      // Rotate the order each repetition so no system always runs first (or last) in a scenario.
      const order = systems.map((_, k) => systems[(k + rep) % systems.length]!);
      for (const system of order) {
        const name = "bench_run";
        const url = await server.createDatabase(name, templates.get(system));
        const conn = await system.connect(url);
        try {
          const values = await scenario.run({
            conn,
            url,
            quick: flags.quick,
            statementStats: server.statementStats,
            showStatements: flags.statements,
          });
          for (const metric of scenario.metrics) {
            if (values[metric.key] !== undefined) results.add(metric, system.name, values[metric.key]!);
          }
          const shown = scenario.metrics.filter((m) => values[m.key] !== undefined).map((m) => `${m.key}=${values[m.key]!.toFixed(2)}`);
          console.log(`rep ${rep + 1}/${reps}  ${scenario.id.padEnd(13)} ${system.name.padEnd(16)} ${shown.join("  ")}`);
        } finally {
          await conn.close();
          await server.dropDatabase(name);
        }
      }
    }
    // A run cut short (a timeout, a crash) still leaves the medians so far.
    if (rep < reps - 1) printTable(results);
  }
  for (const name of templates.values()) await server.dropDatabase(name);
  console.log(`\n${reps} repetition(s), ${((Date.now() - startedAt) / 1000).toFixed(0)} s; medians:\n`);
  printTable(results);
  console.log("\nSettings:");
  for (const system of systems) console.log(`- ${system.name}: standard: ${system.settings.standard}; tuned: ${system.settings.tuned}`);
  if (flags.json) await writeFile(flags.json, JSON.stringify(results, null, 2));
}

function printTable(results: Results): void {
  const names = systems.map((s) => s.name);
  const present = (list: System[]) => list.map((s) => s.name).filter((n) => names.includes(n));
  console.log(results.table(names, present(pgqs), present(peers), CEILING_OF));
}
