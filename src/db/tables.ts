// The schema-qualified table names every statement uses, escaped once per client.
import type { Helper, Sql } from "postgres";

export interface Tables {
  schema: string;
  jobs: Helper<string>;
  deadJobs: Helper<string>;
  schedules: Helper<string>;
  subscriptions: Helper<string>;
  workers: Helper<string>;
  queues: Helper<string>;
  /** Functions of the claim (migration 000010), named here for the same quoting. */
  claimBudget: Helper<string>;
  keyHasRoom: Helper<string>;
  recordStarts: Helper<string>;
  history: Helper<string>;
  queueGauges: Helper<string>;
  waitingClients: Helper<string>;
}

export function tables(sql: Sql, schema: string): Tables {
  return {
    schema,
    jobs: sql(`${schema}.jobs`),
    deadJobs: sql(`${schema}.dead_jobs`),
    schedules: sql(`${schema}.schedules`),
    subscriptions: sql(`${schema}.subscriptions`),
    workers: sql(`${schema}.workers`),
    queues: sql(`${schema}.queues`),
    claimBudget: sql(`${schema}.claim_budget`),
    keyHasRoom: sql(`${schema}.key_has_room`),
    recordStarts: sql(`${schema}.record_starts`),
    history: sql(`${schema}.history`),
    queueGauges: sql(`${schema}.queue_gauges`),
    waitingClients: sql(`${schema}.waiting_clients`),
  };
}
