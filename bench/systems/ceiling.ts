// The "ceilings": minimal hand-written SKIP LOCKED queues with none of a real queue's duties
// (no retries, priorities, dead jobs, history or renewals), as references for what PostgreSQL
// and postgres.js allow on this machine for each of pgq's shapes. Both share one table and one
// enqueue, a plain multi-row INSERT (the batch-enqueue ceiling).
//
// - "ceiling lease": one loop claims a batch with one UPDATE ... RETURNING (a lease column, as
//   pgq's lease mode writes a lease), runs the handlers, and completes the batch with one DELETE
//   sent while the next claim runs: two writes per job, as pgq's lease mode does.
// - "ceiling transaction": slots each running one transaction per job: begin; select ... for
//   update skip locked limit 1; handler; delete; commit, as pgq's transaction mode does.
import postgres, { type Sql } from "postgres";
import { QUEUE, STANDARD_CONCURRENCY, type BenchPayload, type Connected, type Profile, type System } from "./system.js";

const POLL_MS = 1000;
const LEASE = "30 seconds";
/** Claim size of the lease loop: 16 as concurrency 16; 1000 as pgq lease mode's tuned concurrency. */
const LEASE_BATCH: Record<Profile, number> = { standard: STANDARD_CONCURRENCY, tuned: 1000 };
/** Slots of the transaction ceiling, as pgq transaction mode's standard and tuned settings. */
const TRANSACTION_SLOTS: Record<Profile, number> = { standard: STANDARD_CONCURRENCY, tuned: 32 };
/** Completions in flight at most while the lease loop claims again. */
const DELETES_IN_FLIGHT = 2;

const table = `
  create table ceiling_jobs (
    id bigint generated always as identity primary key,
    queue text not null,
    payload jsonb not null,
    run_at timestamptz not null default now(),
    leased_until timestamptz);
  -- The claim index leaves leased rows out, as pgq's jobs_claim does: a claim changes a column
  -- of its predicate, so (as in pgq) the claim's UPDATE is never HOT.
  create index ceiling_jobs_ready on ceiling_jobs (queue, run_at, id) where leased_until is null;
  create function ceiling_notify() returns trigger language plpgsql as $$
    begin perform pg_notify('ceiling_jobs', ''); return null; end $$;
  create trigger ceiling_notify after insert on ceiling_jobs
    for each statement execute function ceiling_notify();`;

export const ceilingLeaseSystem = ceiling("lease", {
  standard: `one loop: update ... set leased_until = now() + '${LEASE}' where id in (select ... for update skip locked limit ${LEASE_BATCH.standard}) returning id, payload; handlers; delete ... where id = any($ids) sent while the next claim runs`,
  tuned: `the same, limit ${LEASE_BATCH.tuned}`,
});

export const ceilingTransactionSystem = ceiling("transaction", {
  standard: `${TRANSACTION_SLOTS.standard} slots: begin; select id, payload ... for update skip locked limit 1; handler; delete ... where id = $1; commit`,
  tuned: `${TRANSACTION_SLOTS.tuned} slots, the same`,
});

/** Each pgq mode's own ceiling, by system name. */
export const CEILING_OF: Record<string, string> = { "pgq lease": "ceiling lease", "pgq transaction": "ceiling transaction" };

function ceiling(mode: "lease" | "transaction", settings: Record<Profile, string>): System {
  return {
    name: `ceiling ${mode}`,
    jobTables: { schema: "public", relname: /^ceiling_jobs$/ },
    settings: {
      standard: `${settings.standard}; enqueue: insert ... values (...), batches as one multi-row insert ... values (...), (...), ...`,
      tuned: settings.tuned,
    },
    async install(url) {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(table);
      } finally {
        await sql.end();
      }
    },
    connect: (url) => Promise.resolve(connect(url, mode)),
  };
}

function connect(url: string, mode: "lease" | "transaction"): Connected {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  return {
    async enqueueOne(payload) {
      await sql`insert into ceiling_jobs (queue, payload) values (${QUEUE}, ${sql.json(payload as never)})`;
    },
    async enqueueBatch(payloads) {
      // One statement, 2 parameters per row; postgres.js serialises each payload as the
      // column's type (jsonb) once the server has described the statement.
      const rows = payloads.map((p) => ({ queue: QUEUE, payload: { ...p } }));
      await sql`insert into ceiling_jobs ${sql(rows, "queue", "payload")}`;
    },
    startWorker: (profile, onJob) => (mode === "lease" ? leaseLoop(url, LEASE_BATCH[profile], onJob) : transactionSlots(url, TRANSACTION_SLOTS[profile], onJob)),
    async remaining() {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ceiling_jobs`;
      return row!.n;
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

/** Runs `once` in `loops` loops until stopped, waiting for a notification (or the poll) whenever it found nothing. */
async function runLoops(sql: Sql, loops: number, once: () => Promise<boolean>, drain: () => Promise<unknown> = async () => {}) {
  const wakeUp = new Set<() => void>();
  const listening = await sql.listen("ceiling_jobs", () => [...wakeUp].forEach((w) => w()));
  let stopping = false;
  const idle = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakeUp.delete(done);
        resolve();
      };
      const timer = setTimeout(done, POLL_MS);
      wakeUp.add(done);
    });
  const loop = async () => {
    while (!stopping) if (!(await once())) await idle();
  };
  const running = Array.from({ length: loops }, loop);
  return {
    async stop() {
      stopping = true;
      [...wakeUp].forEach((w) => w());
      await Promise.all(running);
      await drain();
      await listening.unlisten();
      await sql.end({ timeout: 5 });
    },
  };
}

async function leaseLoop(url: string, batch: number, onJob: (payload: BenchPayload) => void) {
  const sql = postgres(url, { max: DELETES_IN_FLIGHT + 2, onnotice: () => {} });
  const deletes = new Set<Promise<unknown>>();
  return runLoops(
    sql,
    1,
    async () => {
      const jobs = await sql<{ id: string; payload: BenchPayload }[]>`
        update ceiling_jobs set leased_until = now() + ${LEASE}::interval
        where id in (
          select id from ceiling_jobs
          where queue = ${QUEUE} and run_at <= now() and leased_until is null
          order by run_at, id for update skip locked limit ${batch})
        returning id, payload`;
      if (jobs.length === 0) return false;
      await Promise.all(jobs.map(async (job) => onJob(job.payload)));
      if (deletes.size >= DELETES_IN_FLIGHT) await Promise.race(deletes);
      const done: Promise<unknown> = sql`delete from ceiling_jobs where id = any(${jobs.map((j) => j.id)}::bigint[])`.then(() => deletes.delete(done));
      deletes.add(done);
      return true;
    },
    () => Promise.all(deletes),
  );
}

async function transactionSlots(url: string, slots: number, onJob: (payload: BenchPayload) => void) {
  const sql = postgres(url, { max: slots + 1, onnotice: () => {} });
  return runLoops(sql, slots, () =>
    sql.begin(async (tx) => {
      const [job] = await tx<{ id: string; payload: BenchPayload }[]>`
        select id, payload from ceiling_jobs
        where queue = ${QUEUE} and run_at <= now() and leased_until is null
        order by run_at, id for update skip locked limit 1`;
      if (!job) return false;
      onJob(job.payload);
      await tx`delete from ceiling_jobs where id = ${job.id}`;
      return true;
    }),
  );
}
