--! Previous: -
--! Hash: sha1:1e9a85fd72eacd1d71d015739e9125708d782b2e
--! Message: jobs, dead jobs, wake-up trigger and pgq.enqueue

-- pgq's tables, indexes and SQL enqueue function. Every name is qualified with :PGQ_SCHEMA,
-- which the runner (src/migrate.ts) replaces with the configured schema, "pgq" by default.
--
-- A job's state is read from its columns, never stored twice:
--   ready      run_at <= now() and no lease
--   scheduled  run_at > now(), no lease, attempts = 0
--   retrying   run_at > now(), no lease, attempts > 0
--   running    a lease: locked_until and lease_token set (locked_until < now() means its worker died)
-- A finished job is deleted; one that exhausts its attempts moves to dead_jobs.
create schema if not exists :PGQ_SCHEMA;

create table :PGQ_SCHEMA.jobs (
  id              bigint generated always as identity primary key,
  queue           text not null,
  payload         jsonb not null default 'null',
  priority        integer not null default 0,
  run_at          timestamptz not null default now(),
  attempts        integer not null default 0,
  max_attempts    integer not null default 25,
  backoff_base_ms integer not null default 1000,
  backoff_max_ms  integer not null default 3600000,
  timeout_ms      integer,
  dedupe_key      text,
  group_key       text,
  locked_by       text,
  locked_until    timestamptz,
  lease_token     uuid,
  last_error      text,
  errors          jsonb not null default '[]',
  created_at      timestamptz not null default now(),
  constraint jobs_queue_name check (char_length(queue) between 1 and 128 and queue !~ '[[:cntrl:]]'),
  -- a job that is not running always has an attempt left: the last failure moves it to dead_jobs
  constraint jobs_attempts check (max_attempts >= 1 and attempts between 0 and max_attempts
                                  and (attempts < max_attempts or lease_token is not null)),
  constraint jobs_lease check ((locked_until is null) = (lease_token is null)),
  constraint jobs_backoff check (backoff_base_ms >= 0 and backoff_max_ms >= backoff_base_ms),
  constraint jobs_timeout check (timeout_ms is null or timeout_ms > 0)
)
-- Every claim and every lease renewal rewrites a row: free space on each page lets the new
-- version stay on the same page, and vacuum runs often enough that dead versions never pile
-- up in front of the claim's index scan.
with (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
      autovacuum_vacuum_cost_delay = 0);

-- The claim reads this index for one queue in (priority, run_at, id) order and stops after
-- LIMIT rows, so it is a short index scan however large the table grows. Leased rows leave
-- the index, so running jobs are never walked over again.
create index jobs_claim on :PGQ_SCHEMA.jobs (queue, priority, run_at, id) where locked_until is null;

-- Leases in force, for the rescue of lapsed ones and the "running" count.
create index jobs_leased on :PGQ_SCHEMA.jobs (locked_until) where locked_until is not null;

-- At most one live job per queue and dedupe key.
create unique index jobs_dedupe on :PGQ_SCHEMA.jobs (queue, dedupe_key) where dedupe_key is not null;

-- The head of each group (its lowest id) is the only member that may run.
create index jobs_group on :PGQ_SCHEMA.jobs (queue, group_key, id) where group_key is not null;

create table :PGQ_SCHEMA.dead_jobs (
  id              bigint primary key,
  queue           text not null,
  payload         jsonb not null,
  priority        integer not null,
  attempts        integer not null,
  max_attempts    integer not null,
  backoff_base_ms integer not null,
  backoff_max_ms  integer not null,
  timeout_ms      integer,
  dedupe_key      text,
  group_key       text,
  last_error      text,
  errors          jsonb not null,
  created_at      timestamptz not null,
  died_at         timestamptz not null default now()
);
create index dead_jobs_queue on :PGQ_SCHEMA.dead_jobs (queue, died_at);
create index dead_jobs_died_at on :PGQ_SCHEMA.dead_jobs (died_at);

-- Wakes idle workers when jobs become ready. The notification is only a hint: its payload is
-- the queue name, never job data; it is sent at commit and not at all on rollback; and
-- PostgreSQL folds identical notifications of one transaction into one, so a batch of a
-- thousand jobs wakes each queue once.
create function :PGQ_SCHEMA.notify_ready() returns trigger
language plpgsql as $$
begin
  perform pg_notify(tg_table_schema || '_jobs', ready.queue)
  from (select distinct queue from new_jobs where run_at <= now()) ready;
  return null;
end;
$$;

create trigger jobs_notify_ready
  after insert on :PGQ_SCHEMA.jobs
  referencing new table as new_jobs
  for each statement execute function :PGQ_SCHEMA.notify_ready();

-- Enqueue from SQL: triggers, psql and programs in any language. Returns the job's id, or
-- with a dedupe key that already has a live job, that job's id.
create function :PGQ_SCHEMA.enqueue(
  queue        text,
  payload      jsonb default 'null',
  priority     integer default 0,
  run_at       timestamptz default now(),
  max_attempts integer default 25,
  dedupe_key   text default null,
  group_key    text default null
) returns bigint
language plpgsql as $$
#variable_conflict use_column
declare
  job_id bigint;
begin
  if octet_length(payload::text) > 1048576 then
    raise exception 'pgq.enqueue: the payload is % bytes once serialised; the limit is 1048576',
      octet_length(payload::text) using errcode = 'program_limit_exceeded';
  end if;
  insert into :PGQ_SCHEMA.jobs (queue, payload, priority, run_at, max_attempts, dedupe_key, group_key)
  values (enqueue.queue, coalesce(enqueue.payload, 'null'), coalesce(enqueue.priority, 0),
          coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, 25),
          enqueue.dedupe_key, enqueue.group_key)
  on conflict (queue, dedupe_key) where dedupe_key is not null do nothing
  returning id into job_id;
  if job_id is null then
    select j.id into job_id from :PGQ_SCHEMA.jobs j
    where j.queue = enqueue.queue and j.dedupe_key = enqueue.dedupe_key;
  end if;
  return job_id;
end;
$$;
