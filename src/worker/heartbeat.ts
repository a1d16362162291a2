// The heartbeat: renews the leases of every job a worker holds (running, and claimed ahead),
// in one statement, and gives up the jobs whose lease was lost.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { bounded } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import type { Tables } from "../db/tables.js";
import { LeaseLostError } from "../errors.js";
import { renewLeases } from "../sql/renew.js";
import type { Held, Slots } from "./slots.js";

/** Renew this often: a third of the lease, so two renewals may fail before it lapses. */
export function heartbeatMs(leaseMs: number): number {
  return Math.max(50, Math.floor(leaseMs / 3));
}

export async function renewHeld(pool: OwnPool, tables: Tables, slots: Slots, leaseMs: number, log: Logger): Promise<void> {
  const { running, waiting } = slots.held();
  const all: Held[] = [...running, ...waiting];
  if (all.length === 0) return;
  const now = performance.now();
  let renewed: Set<string> | undefined;
  try {
    renewed = await bounded(
      renewLeases(pool.sql, tables, all.map((h) => h.claimed.id), all.map((h) => h.claimed.lease_token), leaseMs),
      Math.max(1000, heartbeatMs(leaseMs)),
      "renewing leases",
    );
    for (const h of all) if (renewed.has(h.claimed.id)) h.renewedAt = now;
  } catch (error) {
    log.warn({ err: error }, "renewing leases failed");
  }
  // Not renewed, or past leaseMs without a renewal: another worker may already have the job.
  const lost = (h: Held) => (renewed ? !renewed.has(h.claimed.id) : performance.now() - h.renewedAt > leaseMs);
  for (const r of running) if (!r.finishing && lost(r)) r.abort.abort(new LeaseLostError(r.claimed.id));
  // A waiting job may have started meanwhile; then its slot's own renewal decides.
  for (const w of waiting) if (lost(w)) slots.dropWaiting(w);
}
