// What a scenario is: a measurement of one system on one fresh database, yielding named metrics.
import type { Connected } from "../systems/system.js";

export interface Metric {
  key: string;
  label: string;
  unit: string;
  better: "higher" | "lower";
}

export interface ScenarioContext {
  conn: Connected;
  /** The fresh database's URL (for pg_stat_statements). */
  url: string;
  quick: boolean;
  /** pg_stat_statements is available: count statements per job. */
  statementStats: boolean;
  /** Print the most frequent statements of each drain. */
  showStatements: boolean;
}

export interface Scenario {
  id: string;
  metrics: Metric[];
  run(ctx: ScenarioContext): Promise<Record<string, number>>;
}

/** n payloads numbered from `from`. */
export function payloads(n: number, from = 0) {
  return Array.from({ length: n }, (_, k) => ({ i: from + k }));
}
