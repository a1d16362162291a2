--! Previous: sha1:926971163aeb95a0da3657742f9f58d0d08b30bc
--! Hash: sha1:bb514817e1b7578b6de3521fcef3874884abf738
--! Message: pgq.workers, the registry of live workers, for instant rescue

-- Issue 18: instant rescue. Until now a killed worker's jobs waited for their leases to lapse
-- (30 s by default) before anyone could run them again. PostgreSQL knows at once when a session
-- ends: each client with workers holds a session-level advisory lock (class 1885827361, 'pgq!',
-- and a random lock_key) on a connection of its own, and registers its workers here under that
-- key. The rescue treats the running jobs of a registered worker whose lock no session holds as
-- lapsed (src/sql/rescue.ts). Jobs of workers not registered here (behind a transaction-mode
-- pooler, where session locks do not hold) are rescued by lease expiry only, as before.
--
-- One row per worker, also for operators (inspect, the dashboard): which workers run, where,
-- and whether they are alive. Rows of dead workers are deleted by the rescue a minute after
-- their lock went and their jobs were rescued.
create table :PGQ_SCHEMA.workers (
  name         text primary key,
  host         text not null,
  pid          integer not null,
  queues       text[] not null,
  mode         text not null,
  concurrency  integer not null,
  lock_key     integer not null,
  started_at   timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  constraint workers_lock_key check (lock_key > 0)
);
