// Drain: a backlog of no-op jobs, enqueued before the clock starts, worked off by one worker.
import { Countdown, now } from "../clock.js";
import { readStatements, resetStatements } from "../statements.js";
import type { Profile } from "../systems/system.js";
import { payloads, type Scenario, type ScenarioContext } from "./scenario.js";

const FILL_BATCH = 1000;
const TIME_BOUND_MS = 120_000;

export const drainStandard = drainScenario("drain", "standard", "drain no-op jobs, concurrency 16");
export const drainTuned = drainScenario("drain-tuned", "tuned", "drain no-op jobs, each tuned for throughput");

function drainScenario(id: string, profile: Profile, label: string): Scenario {
  return {
    id,
    metrics: [
      { key: "rate", label, unit: "jobs/s", better: "higher" },
      { key: "statementsPerJob", label: `${label}: statements per job`, unit: "stmt/job", better: "lower" },
    ],
    run: (ctx) => drain(ctx, profile),
  };
}

async function drain({ conn, url, quick, statementStats, showStatements }: ScenarioContext, profile: Profile) {
  const jobs = quick ? 10_000 : 50_000;
  for (let sent = 0; sent < jobs; sent += FILL_BATCH) await conn.enqueueBatch(payloads(Math.min(FILL_BATCH, jobs - sent), sent));
  if (statementStats) await resetStatements(url);
  const done = new Countdown(jobs);
  const start = now();
  const worker = await conn.startWorker(profile, () => done.tick());
  const finished = await done.wait(TIME_BOUND_MS);
  const seconds = (now() - start) / 1000;
  await worker.stop();
  const result: Record<string, number> = { rate: done.count / seconds };
  if (!finished) console.error(`  drain stopped after ${TIME_BOUND_MS / 1000} s with ${done.count} of ${jobs} jobs handled`);
  const left = await conn.remaining();
  if (finished && left > 0) console.error(`  ${left} jobs still unfinished after the worker stopped`);
  if (statementStats) {
    const statements = await readStatements(url);
    result.statementsPerJob = statements.reduce((sum, s) => sum + s.calls, 0) / done.count;
    if (showStatements) {
      const totalMs = statements.reduce((sum, s) => sum + s.totalMs, 0);
      console.log(`    executing in PostgreSQL: ${((totalMs * 1000) / done.count).toFixed(1)} µs per job (${((totalMs / 1000 / seconds) * 100).toFixed(0)}% of the drain's wall time)`);
      for (const s of [...statements].sort((a, b) => b.totalMs - a.totalMs).slice(0, 8)) {
        console.log(`    ${(s.calls / done.count).toFixed(4)} calls/job  ${((s.totalMs * 1000) / done.count).toFixed(1)} µs/job  ${(s.rows / Math.max(1, s.calls)).toFixed(0)} rows/call  ${s.query.slice(0, 140)}`);
      }
    }
  }
  return result;
}
