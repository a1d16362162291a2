--! Previous: sha1:0d3bd8edf0b3c7b95b4a5340e10c9bb9babea871
--! Hash: sha1:352f6c044f1f630be83ce84a83114256f55d9f9e
--! Message: pgq.history, results, cancel, expiry and progress

-- A finished job used to leave no trace: operators could not say whether job 1042 ran, when,
-- where or with what result, and nothing could wait for a job's result (issue 12). Finished
-- jobs (completed, dead, cancelled, expired) now go to pgq.history, written by the statement
-- that finishes them. It is partitioned by purge_at, the time a row's queue retention runs out
-- (set when the row is written), one partition per day, made ahead and dropped whole by
-- maintenance (src/sql/history.ts): retention deletes no rows and leaves no vacuum debt. The
-- default partition only catches rows written before maintenance made their day's partition.
create table :PGQ_SCHEMA.history (
  id            bigint not null,
  queue         text not null,
  state         text not null,
  payload       jsonb not null,
  result        jsonb,
  progress      jsonb,
  priority      integer not null,
  attempts      integer not null,
  max_attempts  integer not null,
  group_key     text,
  last_error    text,
  errors        jsonb not null,
  created_at    timestamptz not null,
  started_at    timestamptz,
  finished_at   timestamptz not null,
  worker        text,
  purge_at      timestamptz not null,
  constraint history_state check (state in ('completed', 'dead', 'cancelled', 'expired'))
) partition by range (purge_at);
-- getJob(id): one probe per partition.
create index history_id on :PGQ_SCHEMA.history (id);
-- inspect's completed and failed counts and `pgq history --queue`: newest first, per queue,
-- read from the index alone.
create index history_queue on :PGQ_SCHEMA.history (queue, finished_at) include (state);
-- `pgq history` across queues: rows arrive in finished_at order, which BRIN summarises for almost nothing.
create index history_finished on :PGQ_SCHEMA.history using brin (finished_at);
create table :PGQ_SCHEMA.history_default partition of :PGQ_SCHEMA.history default;

-- The first start (history's timeline), an expiry (a job not started by then never runs), and
-- the running job's progress (ctx.progress()).
alter table :PGQ_SCHEMA.jobs
  add column started_at timestamptz,
  add column expires_at timestamptz,
  add column progress   jsonb;
-- Maintenance finishes jobs past their expiresAt along this index; nearly all jobs have none,
-- and are not in it.
create index jobs_expiry on :PGQ_SCHEMA.jobs (expires_at) where expires_at is not null;

-- Without history (a queue's retention 0), a job that expired before it ran is still something
-- an operator must see: it goes to dead_jobs, saying why.
alter table :PGQ_SCHEMA.dead_jobs
  add column reason text not null default 'failed',
  add constraint dead_jobs_reason check (reason in ('failed', 'expired'));
