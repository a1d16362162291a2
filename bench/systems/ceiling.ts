// The "ceiling": a minimal hand-written SKIP LOCKED queue with none of a real queue's duties
// (no retries, leases, priorities or dead jobs), as a reference for what PostgreSQL and
// postgres.js allow on this machine. Standard: 16 slots, each deleting one job inside a
// transaction that commits after the handler, as pgq's transaction mode does. Tuned: one loop
// deleting 1000 jobs per statement, committed before the handlers run (at most once).
import postgres, { type Sql } from "postgres";
import { QUEUE, STANDARD_CONCURRENCY, type BenchPayload, type Profile, type System } from "./system.js";

const BATCH = 1000;
const POLL_MS = 1000;

export const ceilingSystem: System = {
  name: "ceiling",
  settings: {
    standard: `${STANDARD_CONCURRENCY} slots: begin; delete ... where id = (select ... for update skip locked limit 1) returning payload; handler; commit`,
    tuned: `one loop: delete ... where id in (select ... for update skip locked limit ${BATCH}) returning payload, then the handlers`,
  },
  async install(url) {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`
        create table ceiling_jobs (
          id bigint generated always as identity primary key,
          queue text not null,
          payload jsonb not null,
          run_at timestamptz not null default now());
        create index ceiling_jobs_ready on ceiling_jobs (queue, run_at, id);
        create function ceiling_notify() returns trigger language plpgsql as $$
          begin perform pg_notify('ceiling_jobs', ''); return null; end $$;
        create trigger ceiling_notify after insert on ceiling_jobs
          for each statement execute function ceiling_notify();`);
    } finally {
      await sql.end();
    }
  },
  async connect(url) {
    const sql = postgres(url, { max: 10, onnotice: () => {} });
    return {
      async enqueueOne(payload) {
        await sql`insert into ceiling_jobs (queue, payload) values (${QUEUE}, ${sql.json(payload as never)})`;
      },
      async enqueueBatch(payloads) {
        // ::text first, as in pgq: typed as jsonb, postgres.js would serialise the text again.
        await sql`insert into ceiling_jobs (queue, payload)
                  select ${QUEUE}, p from jsonb_array_elements(${JSON.stringify(payloads)}::text::jsonb) p`;
      },
      startWorker: (profile, onJob) => startWorker(url, profile, onJob),
      async remaining() {
        const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ceiling_jobs`;
        return row!.n;
      },
      close: () => sql.end({ timeout: 5 }),
    };
  },
};

async function startWorker(url: string, profile: Profile, onJob: (payload: BenchPayload) => void) {
  const slots = profile === "standard" ? STANDARD_CONCURRENCY : 1;
  const sql = postgres(url, { max: slots + 1, onnotice: () => {} });
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

  async function slot(): Promise<void> {
    while (!stopping) {
      const found = profile === "standard" ? await claimOneInTransaction(sql, onJob) : await claimBatch(sql, onJob);
      if (!found) await idle();
    }
  }
  const loops = Array.from({ length: slots }, slot);
  return {
    async stop() {
      stopping = true;
      [...wakeUp].forEach((w) => w());
      await Promise.all(loops);
      await listening.unlisten();
      await sql.end({ timeout: 5 });
    },
  };
}

async function claimOneInTransaction(sql: Sql, onJob: (payload: BenchPayload) => void): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [job] = await tx<{ payload: BenchPayload }[]>`
      delete from ceiling_jobs where id = (
        select id from ceiling_jobs where queue = ${QUEUE} and run_at <= now()
        order by run_at, id for update skip locked limit 1)
      returning payload`;
    if (job) onJob(job.payload);
    return job !== undefined;
  });
}

async function claimBatch(sql: Sql, onJob: (payload: BenchPayload) => void): Promise<boolean> {
  const jobs = await sql<{ payload: BenchPayload }[]>`
    delete from ceiling_jobs where id in (
      select id from ceiling_jobs where queue = ${QUEUE} and run_at <= now()
      order by run_at, id for update skip locked limit ${BATCH})
    returning payload`;
  await Promise.all(jobs.map(async (job) => onJob(job.payload)));
  return jobs.length > 0;
}
